//! Routing rules: is a record an internal-client or an external-client signal, and who is the author?
//!
//! In order, first match wins:
//! 1. the source's fixed `segment` (`internal` / `external`) → reason `source:<name>`;
//! 2. a roster entry for the author → reason `roster`;
//! 3. the author's e-mail domain (or a parent domain) in `internal_domains` (employee),
//!    `supplier_domains`, `partner_domains` or `investor_domains` → reason `domain:<domain>`;
//! 4. otherwise, for `auto` sources: external, the source's client_type or consumer → `default:external`.

use crate::config::{OrganizationSection, SourcePlan};
use crate::record::{ClientType, InputRecord, Routing, Segment};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RosterError {
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Row {
        path: PathBuf,
        line: u64,
        message: String,
    },
}

/// One roster line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    pub client_type: ClientType,
    pub department: Option<String>,
}

/// The routing rules built from `[organization]` and the roster.
#[derive(Debug, Clone, Default)]
pub struct Router {
    domains: HashMap<String, ClientType>,
    roster: HashMap<String, RosterEntry>,
}

/// The author key used for roster lookups: the e-mail address if there is one, lower-cased.
pub fn author_key(author: &str) -> String {
    match extract_email(author) {
        Some(e) => e.to_lowercase(),
        None => author.trim().to_lowercase(),
    }
}

/// The e-mail address in an author field as exports write it: `Ana <ana@acme.com>`,
/// `ana@acme.com (Ana Silva)`, `"ana@acme.com"`, `mailto:ana@acme.com`, `ana@acme.com;`,
/// `["ana@acme.com"]`, `ana@acme.com, rui@acme.com` (the first address). None when there is no
/// `local@domain.tld` in it (a handle like `@maria`).
///
/// ```
/// use pulso::route::extract_email;
/// assert_eq!(extract_email("ana.silva@acme.com (Ana Silva)").as_deref(), Some("ana.silva@acme.com"));
/// assert_eq!(extract_email("[\"nina@acme.com\"]").as_deref(), Some("nina@acme.com"));
/// assert_eq!(extract_email("@maria"), None);
/// ```
pub fn extract_email(author: &str) -> Option<String> {
    let a = author.trim();
    if !a.contains('@') {
        return None;
    }
    // An address in angle brackets wins over anything around it (`"x@y" <real@acme.com>`).
    if let (Some(i), Some(j)) = (a.rfind('<'), a.rfind('>')) {
        if i < j {
            if let Some(e) = first_address(&a[i + 1..j]) {
                return Some(e);
            }
        }
    }
    first_address(a)
}

/// The first `local@domain.tld` in `s`. Works on bytes: every separator is ASCII, and any
/// non-ASCII byte counts as a letter, so slices always fall on character boundaries.
fn first_address(s: &str) -> Option<String> {
    let is_local =
        |b: u8| b >= 0x80 || b.is_ascii_alphanumeric() || b"._%+-'!#$&*/=?^`{|}~".contains(&b);
    let is_domain = |b: u8| b >= 0x80 || b.is_ascii_alphanumeric() || b".-".contains(&b);
    let bytes = s.as_bytes();
    for (k, _) in bytes.iter().enumerate().filter(|(_, &b)| b == b'@') {
        let mut start = k;
        while start > 0 && is_local(bytes[start - 1]) {
            start -= 1;
        }
        let mut end = k + 1;
        while end < bytes.len() && is_domain(bytes[end]) {
            end += 1;
        }
        let local = s[start..k]
            .trim_start_matches(['\'', '.', '`'])
            .trim_end_matches('.');
        let domain = s[k + 1..end].trim_matches(['.', '-']);
        if local.is_empty() || !domain.contains('.') || domain.contains("..") {
            continue;
        }
        return Some(format!("{local}@{domain}"));
    }
    None
}

/// The domain of an e-mail address, lower-cased.
pub fn email_domain(author: &str) -> Option<String> {
    let k = author_key(author);
    let (_, d) = k.rsplit_once('@')?;
    let d = d.trim_end_matches('.');
    (!d.is_empty()).then(|| d.to_string())
}

impl Router {
    /// Builds the router; reads the roster CSV (columns author, client_type, department).
    pub fn build(org: &OrganizationSection, roster: Option<&Path>) -> Result<Router, RosterError> {
        let mut domains = HashMap::new();
        for (list, ct) in [
            (&org.investor_domains, ClientType::Investor),
            (&org.partner_domains, ClientType::Partner),
            (&org.supplier_domains, ClientType::Supplier),
            (&org.internal_domains, ClientType::Employee),
        ] {
            for d in list {
                domains.insert(d.trim().trim_start_matches('@').to_lowercase(), ct);
            }
        }
        let roster = match roster {
            Some(p) => read_roster(p)?,
            None => HashMap::new(),
        };
        Ok(Router { domains, roster })
    }

    /// The roster entry for an author, if any.
    pub fn roster_entry(&self, author: &str) -> Option<&RosterEntry> {
        self.roster.get(&author_key(author))
    }

    fn domain_rule(&self, author: &str) -> Option<(String, ClientType)> {
        let mut d = email_domain(author)?;
        loop {
            if let Some(ct) = self.domains.get(&d) {
                return Some((d, *ct));
            }
            let (_, parent) = d.split_once('.')?;
            if !parent.contains('.') {
                return None;
            }
            d = parent.to_string();
        }
    }

    /// Routes one record.
    pub fn route(&self, source: &SourcePlan, rec: &InputRecord) -> Routing {
        let author = rec.author.as_deref();
        let roster = author.and_then(|a| self.roster_entry(a));
        let domain = author.and_then(|a| self.domain_rule(a));
        if let Some(segment) = source.fixed_segment() {
            // The source decides the segment; client_type comes from the source, else what we know of the author.
            let known = roster
                .map(|r| r.client_type)
                .or(domain.as_ref().map(|d| d.1));
            let client_type = source
                .client_type
                .or(known.filter(|c| c.natural_segment() == segment))
                .unwrap_or(match segment {
                    Segment::Internal => ClientType::Unknown,
                    Segment::External => ClientType::Consumer,
                });
            return Routing {
                segment,
                client_type,
                reason: format!("source:{}", source.name),
            };
        }
        if let Some(r) = roster {
            return Routing {
                segment: r.client_type.natural_segment(),
                client_type: r.client_type,
                reason: "roster".into(),
            };
        }
        if let Some((d, ct)) = domain {
            return Routing {
                segment: Segment::Internal,
                client_type: ct,
                reason: format!("domain:{d}"),
            };
        }
        Routing {
            segment: Segment::External,
            client_type: source
                .client_type
                .filter(|c| c.natural_segment() == Segment::External)
                .unwrap_or(ClientType::Consumer),
            reason: "default:external".into(),
        }
    }
}

fn read_roster(path: &Path) -> Result<HashMap<String, RosterEntry>, RosterError> {
    let f = std::fs::File::open(path).map_err(|err| RosterError::Io {
        path: path.into(),
        err,
    })?;
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(f);
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| RosterError::Row {
            path: path.into(),
            line: 1,
            message: e.to_string(),
        })?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_lowercase())
        .collect();
    let col = |n: &str| headers.iter().position(|h| h == n);
    let (Some(ia), Some(ic)) = (col("author"), col("client_type")) else {
        return Err(RosterError::Row {
            path: path.into(),
            line: 1,
            message: format!(
                "the roster needs columns author, client_type (optional department); found: {}",
                headers.join(", ")
            ),
        });
    };
    let idep = col("department");
    let mut out = HashMap::new();
    for r in rdr.records() {
        let r = r.map_err(|e| RosterError::Row {
            path: path.into(),
            line: e.position().map(|p| p.line()).unwrap_or(0),
            message: e.to_string(),
        })?;
        let line = r.position().map(|p| p.line()).unwrap_or(0);
        let author = r.get(ia).unwrap_or("").trim();
        if author.is_empty() {
            return Err(RosterError::Row {
                path: path.into(),
                line,
                message: "field author is empty".into(),
            });
        }
        let ct_raw = r.get(ic).unwrap_or("");
        let client_type = ClientType::parse(ct_raw).ok_or_else(|| RosterError::Row {
            path: path.into(),
            line,
            message: format!(
                "field client_type {ct_raw:?} is not one of employee, contractor, supplier, partner, investor, consumer, business, unknown"
            ),
        })?;
        let department = idep
            .and_then(|i| r.get(i))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from);
        out.insert(
            author_key(author),
            RosterEntry {
                client_type,
                department,
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Columns, Format, SegmentMode};

    fn source(segment: SegmentMode, ct: Option<ClientType>) -> SourcePlan {
        SourcePlan {
            name: "src".into(),
            format: Format::Csv,
            segment,
            client_type: ct,
            delimiter: b',',
            columns: Columns::default(),
            files: vec![],
            read: Default::default(),
        }
    }

    fn rec(author: &str) -> InputRecord {
        InputRecord {
            author: Some(author.into()),
            ..Default::default()
        }
    }

    fn router() -> Router {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("people.csv");
        std::fs::write(&p, "author,client_type,department\nJoana@Agency.example,contractor,IT\nbig@fund.example,investor,\nana@acme.com,partner,\n").unwrap();
        let org = OrganizationSection {
            internal_domains: vec!["acme.com".into()],
            supplier_domains: vec!["steelworks.example".into()],
            partner_domains: vec!["parceira.example".into()],
            ..Default::default()
        };
        Router::build(&org, Some(&p)).unwrap()
    }

    #[test]
    fn rules_in_order() {
        let r = router();
        let auto = source(SegmentMode::Auto, None);
        let t = |a: &str| {
            let x = r.route(&auto, &rec(a));
            (x.segment, x.client_type, x.reason)
        };
        assert_eq!(
            t("joana@agency.example"),
            (Segment::Internal, ClientType::Contractor, "roster".into())
        );
        // Roster wins over the domain rule.
        assert_eq!(
            t("Ana <ana@acme.com>"),
            (Segment::Internal, ClientType::Partner, "roster".into())
        );
        assert_eq!(
            t("rui@acme.com"),
            (
                Segment::Internal,
                ClientType::Employee,
                "domain:acme.com".into()
            )
        );
        assert_eq!(
            t("x@mail.steelworks.example"),
            (
                Segment::Internal,
                ClientType::Supplier,
                "domain:steelworks.example".into()
            )
        );
        assert_eq!(
            t("bob@gmail.com"),
            (
                Segment::External,
                ClientType::Consumer,
                "default:external".into()
            )
        );
        assert_eq!(
            t("@somehandle"),
            (
                Segment::External,
                ClientType::Consumer,
                "default:external".into()
            )
        );
    }

    #[test]
    fn addresses_in_the_forms_exports_use() {
        for (raw, want) in [
            ("ana.silva@acme.com (Ana Silva)", Some("ana.silva@acme.com")),
            ("\"bruno.costa@acme.com\"", Some("bruno.costa@acme.com")),
            ("carla.dias@acme.com;", Some("carla.dias@acme.com")),
            ("[\"nina@acme.com\"]", Some("nina@acme.com")),
            ("Ana Silva <ana@acme.com>", Some("ana@acme.com")),
            ("mailto:rui@acme.com.", Some("rui@acme.com")),
            ("'o'brien@acme.com'", Some("o'brien@acme.com")),
            ("x@acme.com, y@acme.com", Some("x@acme.com")),
            ("@somehandle", None),
            ("no address", None),
            ("a@b", None),
        ] {
            assert_eq!(extract_email(raw).as_deref(), want, "{raw}");
        }
        let r = router();
        let auto = source(SegmentMode::Auto, None);
        for a in [
            "ana.silva@acme.com (Ana Silva)",
            "\"bruno.costa@acme.com\"",
            "carla.dias@acme.com;",
            "[\"nina@acme.com\"]",
        ] {
            assert_eq!(r.route(&auto, &rec(a)).segment, Segment::Internal, "{a}");
        }
    }

    #[test]
    fn fixed_source_segment_wins() {
        let r = router();
        let ext = source(SegmentMode::External, Some(ClientType::Business));
        let x = r.route(&ext, &rec("rui@acme.com"));
        assert_eq!(
            (x.segment, x.client_type, x.reason.as_str()),
            (Segment::External, ClientType::Business, "source:src")
        );
        let int = source(SegmentMode::Internal, None);
        let x = r.route(&int, &rec("joana@agency.example"));
        assert_eq!(
            (x.segment, x.client_type),
            (Segment::Internal, ClientType::Contractor)
        );
    }

    #[test]
    fn roster_errors_name_line_and_field() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("people.csv");
        std::fs::write(&p, "author,client_type\na@x.com,employee\nb@x.com,alien\n").unwrap();
        let e = Router::build(&OrganizationSection::default(), Some(&p))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("people.csv:3") && e.contains("client_type") && e.contains("alien"),
            "{e}"
        );
    }
}
