//! PLACEHOLDER (owned by the model/score engineer): `pulso eval`.
