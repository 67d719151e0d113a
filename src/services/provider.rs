//! Which internal service (provider) a signal is about: the `provider` and `provider_reason` columns.
//!
//! Order: the source's provider column (`[source.columns] provider`), its value looked up in
//! `[organization.providers]` (`map:<value>`) or used as it is (`column:<name>`); else, for internal
//! signals, the provider named earliest in the text by the department taxonomy
//! (`pipelines/departments.toml`, `text:<term>`), skipping the requester's own department; else null.

use crate::enrich::{normalize, words, TermMatcher};
use anyhow::{bail, Context};
use std::collections::{BTreeMap, HashMap};

/// The built-in department taxonomy (`pipelines/departments.toml`).
pub const DEFAULT_DEPARTMENTS_TOML: &str = include_str!("../../pipelines/departments.toml");

/// A parsed department taxonomy.
#[derive(Clone, Debug, Default)]
pub struct Departments {
    names: Vec<String>,
    /// Normalised word lists that name each provider as a requester department.
    aliases: Vec<Vec<Vec<String>>>,
    /// Label = index into `terms`.
    matcher: TermMatcher,
    /// (provider index, term as written in the file).
    terms: Vec<(usize, String)>,
}

fn ordered_tables(src: &str) -> anyhow::Result<Vec<(String, toml::Value)>> {
    let doc: crate::enrich::Ordered<toml::Value> =
        toml::from_str(src).context("department taxonomy is not valid TOML")?;
    Ok(doc.0)
}

impl Departments {
    /// Parses a taxonomy in the `pipelines/departments.toml` format.
    pub fn parse(src: &str) -> anyhow::Result<Departments> {
        let mut d = Departments::default();
        for (name, value) in ordered_tables(src)? {
            let table = value.as_table().with_context(|| {
                format!("[{name}] must be a table with aliases = [...], pt = [...], es = [...], en = [...]")
            })?;
            let pi = d.names.len();
            d.names.push(name.clone());
            let mut aliases = vec![words(&name)];
            let mut n_terms = 0;
            for (key, list) in table {
                let arr = list
                    .as_array()
                    .with_context(|| format!("[{name}] {key} must be a list of strings"))?;
                for item in arr {
                    let term = item.as_str().with_context(|| {
                        format!("[{name}] {key}: entries must be strings, found {item}")
                    })?;
                    if key == "aliases" {
                        let w = words(term);
                        if w.is_empty() {
                            bail!("[{name}] aliases: {term:?} has no letters or digits");
                        }
                        aliases.push(w);
                    } else {
                        let label = d.terms.len();
                        if !d.matcher.add(term, label) {
                            bail!("[{name}] {key}: term {term:?} has no letters or digits");
                        }
                        d.terms.push((pi, term.to_string()));
                        n_terms += 1;
                    }
                }
            }
            if n_terms == 0 {
                bail!("[{name}] has no terms (add pt = [...], es = [...] or en = [...])");
            }
            d.aliases.push(aliases);
        }
        Ok(d)
    }

    /// The built-in taxonomy.
    pub fn builtin() -> Departments {
        Departments::parse(DEFAULT_DEPARTMENTS_TOML).expect("pipelines/departments.toml is valid")
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether `department` (a requester's department) is provider `pi` itself.
    fn is_own(&self, pi: usize, department: Option<&str>) -> bool {
        let Some(dep) = department else { return false };
        let w = words(dep);
        !w.is_empty() && self.aliases[pi].contains(&w)
    }

    /// Every provider named in `tokens` (from [`words`]), in text order, with the term that
    /// matched, skipping the requester's own department. At one word position the provider that
    /// comes first in the file wins.
    pub fn mentions(
        &self,
        tokens: &[String],
        department: Option<&str>,
    ) -> Vec<(usize, String, String)> {
        let mut hits: Vec<(usize, usize, usize)> = self
            .matcher
            .find(tokens)
            .into_iter()
            .map(|(pos, label)| (pos, self.terms[label].0, label))
            .filter(|(_, pi, _)| !self.is_own(*pi, department))
            .collect();
        hits.sort();
        hits.dedup_by_key(|h| (h.0, h.1));
        hits.into_iter()
            .map(|(pos, pi, label)| (pos, self.names[pi].clone(), self.terms[label].1.clone()))
            .collect()
    }
}

/// Provider and reason for one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderMatch {
    pub provider: String,
    /// `column:<name>`, `map:<value>` or `text:<term>`.
    pub reason: String,
    /// True when it came from the text (not from a column).
    pub from_text: bool,
}

/// Resolves `provider` from a column value, the value map and the text.
#[derive(Clone, Debug, Default)]
pub struct ProviderResolver {
    departments: Departments,
    /// normalised column value → provider.
    map: HashMap<String, String>,
}

impl ProviderResolver {
    pub fn new(departments: Departments, map: &BTreeMap<String, String>) -> ProviderResolver {
        ProviderResolver {
            departments,
            map: map
                .iter()
                .map(|(k, v)| (normalize(k.trim()), v.trim().to_string()))
                .collect(),
        }
    }

    pub fn departments(&self) -> &Departments {
        &self.departments
    }

    /// A provider column value: `map:<value>` when the value map has it (case- and
    /// accent-insensitive), else `column:<column>` with the value as it is. Blank → None.
    pub fn from_column(&self, column: &str, value: Option<&str>) -> Option<ProviderMatch> {
        let v = value.map(str::trim).filter(|v| !v.is_empty())?;
        Some(match self.map.get(&normalize(v)) {
            Some(p) => ProviderMatch {
                provider: p.clone(),
                reason: format!("map:{v}"),
                from_text: false,
            },
            None => ProviderMatch {
                provider: v.to_string(),
                reason: format!("column:{column}"),
                from_text: false,
            },
        })
    }

    /// The provider named earliest in the text, never the requester's own department.
    pub fn from_text(&self, tokens: &[String], department: Option<&str>) -> Option<ProviderMatch> {
        self.departments
            .mentions(tokens, department)
            .into_iter()
            .next()
            .map(|(_, p, term)| ProviderMatch {
                provider: p,
                reason: format!("text:{term}"),
                from_text: true,
            })
    }
}
