//! Departments as internal clients of one another: which internal service a signal is about
//! (`provider`), sentiment per sentence, topic and provider (`aspects`), and the
//! `aggregates/internal_service_weekly` table.
//!
//! [`provider`] resolves the provider, [`sentences`] splits texts, [`aspects`] assigns sentence
//! scores to topics and providers, [`weekly`] builds the anonymised weekly table. [`Services`] is
//! what the pipeline calls per record.

pub mod aspects;
pub mod provider;
pub mod sentences;
pub mod weekly;

use crate::config::{ServicePlan, SourcePlan};
use crate::enrich::{words, Taxonomy};
use crate::record::{Enrichment, InputRecord, Routing, Segment};
use anyhow::Context;
use aspects::ScoredSentence;
use provider::{Departments, ProviderResolver};

/// The provider and aspect stage, built once per run.
pub struct Services {
    resolver: ProviderResolver,
    /// Score sentences and fill `aspects`.
    pub aspects: bool,
}

impl Services {
    pub fn build(plan: &ServicePlan) -> anyhow::Result<Services> {
        let departments = match &plan.departments {
            None => Departments::builtin(),
            Some(p) => {
                let src = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read department taxonomy {}", p.display()))?;
                Departments::parse(&src)
                    .with_context(|| format!("in department taxonomy {}", p.display()))?
            }
        };
        Ok(Services {
            resolver: ProviderResolver::new(departments, &plan.providers),
            aspects: plan.aspects,
        })
    }

    /// Sets `provider`, `provider_reason` and `aspects` of an enriched signal. `sentences` are
    /// the text's scored sentences (empty when aspects are off).
    pub fn annotate(
        &self,
        source: &SourcePlan,
        record: &InputRecord,
        routing: &Routing,
        taxonomy: &Taxonomy,
        sentences: &[ScoredSentence],
        enrichment: &mut Enrichment,
    ) {
        let department = record.department.as_deref();
        let column = source
            .columns
            .provider
            .as_deref()
            .and_then(|c| self.resolver.from_column(c, record.provider.as_deref()));
        let found = column.or_else(|| {
            (routing.segment == Segment::Internal)
                .then(|| self.resolver.from_text(&words(&record.text), department))
                .flatten()
        });
        if self.aspects {
            enrichment.aspects = Some(aspects::aspects(
                &record.text,
                sentences,
                routing.segment,
                taxonomy,
                self.resolver.departments(),
                department,
                found.as_ref(),
            ));
        }
        if let Some(p) = found {
            enrichment.provider = Some(p.provider);
            enrichment.provider_reason = Some(p.reason);
        }
    }
}
