//! The terminal report: plain text tables, input text stripped of control characters.

use super::data::{net_for, ReportData};
use super::services::{self, Cell, Point};
use super::{TERMINAL_DAYS, TREND_DAYS};
use chrono::{Duration, NaiveDate};
use std::fmt::Write as _;

/// Input text made safe for a terminal: control characters (escape sequences) become spaces.
fn term_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn clip(s: &str, n: usize) -> String {
    let s = term_safe(s);
    if s.chars().count() <= n {
        s
    } else {
        s.chars().take(n.saturating_sub(1)).collect::<String>() + "…"
    }
}

fn text_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::from(" ");
        for (i, c) in cells.iter().enumerate() {
            let pad = w[i] - c.chars().count();
            s.push_str(c);
            s.push_str(&" ".repeat(pad));
            s.push_str(if i + 1 < cells.len() { "  " } else { "" });
        }
        s.trim_end().to_string() + "\n"
    };
    let mut s = line(headers.to_vec());
    s += &line(
        w.iter()
            .map(|n| "─".repeat(*n))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    );
    for r in rows {
        s += &line(r.iter().map(String::as_str).collect());
    }
    s
}

pub(super) fn fmt_net(v: Option<f64>) -> String {
    v.map(|v| format!("{v:+.2}")).unwrap_or_else(|| "—".into())
}
pub(super) fn fmt_pct(v: Option<f64>) -> String {
    v.map(|v| format!("{:.0}%", v * 100.0))
        .unwrap_or_else(|| "—".into())
}

pub fn render_terminal(d: &ReportData) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "pulso report — {} (date={})\n", d.out.display(), d.date);

    let _ = writeln!(s, "MARKETING — brand perception (external signals)\n");
    let days: Vec<NaiveDate> = (0..TERMINAL_DAYS)
        .rev()
        .map(|i| d.date - Duration::days(i))
        .collect();
    let brands = d.brands_ordered(15);
    if brands.is_empty() {
        let _ = writeln!(s, " No brand_daily rows for the last {TREND_DAYS} days.\n");
    } else {
        let _ = writeln!(s, " Net sentiment by brand and day, (pos − neg) / (pos + neg), all channels and languages:");
        let mut headers = vec!["brand".to_string()];
        headers.extend(days.iter().map(|x| x.format("%m-%d").to_string()));
        let rows: Vec<Vec<String>> = brands
            .iter()
            .map(|b| {
                let mut r = vec![clip(b, 28)];
                r.extend(days.iter().map(|x| fmt_net(net_for(&d.trend[b], *x))));
                r
            })
            .collect();
        let h: Vec<&str> = headers.iter().map(String::as_str).collect();
        s += &text_table(&h, &rows);
        s.push('\n');
    }
    let sov = d.share_of_voice();
    let _ = writeln!(
        s,
        " Share of voice (mentions / mentions of all tracked brands and competitors, run {}):",
        d.date
    );
    if sov.is_empty() {
        let _ = writeln!(s, " No tracked brand or competitor mentions.\n");
    } else {
        let rows: Vec<Vec<String>> = sov
            .iter()
            .map(|(b, t, m, v)| {
                vec![
                    clip(b, 28),
                    t.clone(),
                    m.to_string(),
                    format!("{:.1}%", v * 100.0),
                ]
            })
            .collect();
        s += &text_table(&["brand", "type", "mentions", "share"], &rows);
        s.push('\n');
    }
    let spikes = d.spikes();
    let _ = writeln!(s, " Spikes (trailing 7-day mean + k·σ):");
    if spikes.is_empty() {
        let _ = writeln!(s, " none\n");
    } else {
        let rows: Vec<Vec<String>> = spikes
            .iter()
            .map(|r| {
                vec![
                    r.day.to_string(),
                    clip(&r.brand, 24),
                    clip(&r.channel, 16),
                    r.language.clone(),
                    r.mentions.to_string(),
                    clip(r.spike_reason.as_deref().unwrap_or(""), 60),
                ]
            })
            .collect();
        s += &text_table(
            &["day", "brand", "channel", "lang", "mentions", "why"],
            &rows,
        );
        s.push('\n');
    }
    if !d.negative_mentions.is_empty() {
        let _ = writeln!(s, " Most engaged negative mentions:");
        let rows: Vec<Vec<String>> = d
            .negative_mentions
            .iter()
            .map(|m| {
                vec![
                    m.engagement.to_string(),
                    clip(m.brand.as_deref().unwrap_or("—"), 20),
                    clip(m.channel.as_deref().unwrap_or("—"), 14),
                    clip(&m.text, 70),
                ]
            })
            .collect();
        s += &text_table(&["engagement", "brand", "channel", "text"], &rows);
        s.push('\n');
    }

    let _ = writeln!(
        s,
        "HR — engagement (internal signals, weekly; small groups suppressed)\n"
    );
    if d.weekly_rows.is_empty() {
        let _ = writeln!(s, " No engagement_weekly rows for date={}.", d.date);
    } else {
        let rows: Vec<Vec<String>> = d
            .weekly_rows
            .iter()
            .map(|r| {
                let mut v = vec![
                    r.week.clone(),
                    clip(&r.department, 24),
                    r.client_type.clone(),
                ];
                if r.suppressed {
                    v.push(format!("suppressed (< {})", r.min_group_size));
                    v.extend(std::iter::repeat_n(String::new(), 5));
                } else {
                    v.push(r.respondents.map(|x| x.to_string()).unwrap_or_default());
                    v.push(fmt_pct(r.negative_share));
                    v.push(fmt_net(r.net_sentiment));
                    v.push(r.attrition_risk.map(|x| x.to_string()).unwrap_or_default());
                    v.push(
                        r.enps
                            .map(|x| format!("{x:+.0}"))
                            .unwrap_or_else(|| "—".into()),
                    );
                    v.push(clip(
                        &r.topics
                            .iter()
                            .take(3)
                            .map(|t| format!("{} ({:.0}% neg)", t.topic, t.negative_share * 100.0))
                            .collect::<Vec<_>>()
                            .join(", "),
                        60,
                    ));
                }
                v
            })
            .collect();
        s += &text_table(
            &[
                "week",
                "department",
                "client_type",
                "respondents",
                "negative",
                "net",
                "attrition",
                "eNPS",
                "top topics",
            ],
            &rows,
        );
    }
    s.push('\n');
    s += &services_section(d);
    s
}

fn services_section(d: &ReportData) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "INTERNAL SERVICES — how departments rate the services they use (weekly; small groups suppressed)\n"
    );
    let Some(hm) = services::heat_map(&d.services) else {
        let _ = writeln!(s, " No internal_service_weekly rows up to date={}.", d.date);
        return s;
    };
    let _ = writeln!(
        s,
        " Net sentiment about each provider, requester × provider, week {} (from aspects):",
        hm.week
    );
    let mut headers = vec!["requester".to_string()];
    headers.extend(hm.providers.iter().map(|p| clip(p, 14)));
    let rows: Vec<Vec<String>> = hm
        .rows
        .iter()
        .map(|(q, cells)| {
            let mut r = vec![clip(q, 30)];
            r.extend(cells.iter().map(|c| match c {
                Cell::Net { net, responses } => format!("{} ({responses})", fmt_net(*net)),
                Cell::Suppressed(_) => "suppressed".to_string(),
                Cell::Empty => "·".to_string(),
            }));
            r
        })
        .collect();
    let h: Vec<&str> = headers.iter().map(String::as_str).collect();
    s += &text_table(&h, &rows);
    s.push('\n');

    let tr = services::trend(&d.services);
    let _ = writeln!(
        s,
        " Trend per provider (provider totals, net sentiment per ISO week):"
    );
    let mut headers = vec!["provider".to_string()];
    headers.extend(tr.weeks.iter().map(|w| w.1.clone()));
    let rows: Vec<Vec<String>> = tr
        .series
        .iter()
        .map(|(p, vals)| {
            let mut r = vec![clip(p, 20)];
            r.extend(vals.iter().map(|v| match v {
                Point::Net(v) => fmt_net(*v),
                Point::Suppressed => "suppressed".to_string(),
                Point::Absent => "·".to_string(),
            }));
            r
        })
        .collect();
    let h: Vec<&str> = headers.iter().map(String::as_str).collect();
    s += &text_table(&h, &rows);
    s.push('\n');

    let _ = writeln!(
        s,
        " Topics behind each provider's negatives (published cells, weeks shown):"
    );
    let rows: Vec<Vec<String>> = services::drivers(&d.services, 3)
        .into_iter()
        .map(|(p, ds)| {
            vec![
                clip(&p, 20),
                if ds.is_empty() {
                    "—".to_string()
                } else {
                    clip(
                        &ds.iter()
                            .map(|(t, m, share, _)| {
                                format!("{t} ({:.0}% neg of {m})", share * 100.0)
                            })
                            .collect::<Vec<_>>()
                            .join(", "),
                        90,
                    )
                },
            ]
        })
        .collect();
    s += &text_table(&["provider", "topics"], &rows);
    s
}
