//! `[privacy] internal_text`: what of internal signals is published row by row.
//!
//! Row-level internal signals carry department, pseudonym and text for every row, including the
//! small groups the aggregates suppress, so whoever can read the output folder bypasses
//! `min_group_size`. `drop` keeps scores, topics and flags but empties `text`; `aggregates-only`
//! publishes no internal rows at all (the aggregate tables still count them). Rejects of sources
//! that may hold internal records lose their `raw` under both.

use crate::config::InternalText;
use crate::record::{Reject, Segment, Signal};

/// What replaces a withheld reject `raw`.
pub const WITHHELD: &str = "[withheld: [privacy] internal_text]";

/// Applies the mode to one chunk on its way to the writer (after statistics and aggregates saw it).
pub fn apply(mode: InternalText, signals: &mut Vec<Signal>) {
    match mode {
        InternalText::Keep => {}
        InternalText::Drop => {
            for s in signals.iter_mut() {
                if s.routing.segment == Segment::Internal {
                    s.record.text = String::new();
                }
            }
        }
        InternalText::AggregatesOnly => signals.retain(|s| s.routing.segment != Segment::Internal),
    }
}

/// Withholds the raw text of a reject that may be internal (`may_be_internal`) unless the mode is keep.
pub fn apply_reject(mode: InternalText, may_be_internal: bool, r: &mut Reject) {
    if mode != InternalText::Keep && may_be_internal {
        r.raw = WITHHELD.to_string();
    }
}

/// The one summary line about row-level internal output, or None when there were no internal signals.
/// Under `keep` it says the text was published and points to the option.
pub fn notice(mode: InternalText, internal_signals: u64) -> Option<String> {
    if internal_signals == 0 {
        return None;
    }
    Some(match mode {
        InternalText::Keep => format!(
            "privacy: {internal_signals} internal signal(s) were published row by row with their text (signals/segment=internal); \
             anyone who can read the output can read them, including groups smaller than min_group_size. \
             Set [privacy] internal_text = \"drop\" or \"aggregates-only\" in the pipeline file to publish less (see README, Privacy)"
        ),
        InternalText::Drop => format!(
            "privacy: {internal_signals} internal signal(s) were published without their text (drop)"
        ),
        InternalText::AggregatesOnly => format!(
            "privacy: {internal_signals} internal signal(s) went into the aggregates only; none were published row by row"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notice_only_points_to_the_option_under_keep() {
        assert!(notice(InternalText::Keep, 0).is_none());
        assert!(notice(InternalText::Keep, 3)
            .unwrap()
            .contains("internal_text = \"drop\""));
        assert!(!notice(InternalText::Drop, 3)
            .unwrap()
            .contains("internal_text"));
        assert!(notice(InternalText::AggregatesOnly, 3)
            .unwrap()
            .contains("aggregates only"));
    }
}
