//! The HTML report: a view model (plain strings and numbers, chart geometry already computed)
//! rendered by the minijinja templates in `src/report/templates/`.
//!
//! The templates are compiled into the binary. Auto-escaping is on for every template and uses
//! [`escape_html`], so every `{{ value }}` — input text, labels, titles inside attributes — is
//! shown as text; nothing is marked safe. Scripts are forbidden by [`CSP`] and the templates
//! contain none.

use super::data::{net_for, ReportData};
use super::services::{self, Cell, Point};
use super::terminal::{fmt_net, fmt_pct};
use super::TREND_DAYS;
use anyhow::Context;
use chrono::{Duration, NaiveDate};
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::Serialize;
use std::collections::BTreeSet;

/// Escapes `& < > " '` so input text is always shown as text (also inside attributes); control
/// characters other than newline and tab become spaces.
pub fn escape_html(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// The Content-Security-Policy of the HTML report: no scripts, no external anything. Written
/// literally in `templates/report.html` (a template constant, not data); a test keeps them equal.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

const PALETTE: [&str; 10] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#bcbd22", "#7f7f7f",
];

const TEMPLATES: [(&str, &str); 5] = [
    ("report.html", include_str!("templates/report.html")),
    ("charts.html", include_str!("templates/charts.html")),
    ("marketing.html", include_str!("templates/marketing.html")),
    ("hr.html", include_str!("templates/hr.html")),
    ("services.html", include_str!("templates/services.html")),
];

fn environment() -> anyhow::Result<Environment<'static>> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_formatter(|out, state, value| {
        if value.is_undefined() || value.is_none() {
            return Ok(());
        }
        if *state.auto_escape() == AutoEscape::None || value.is_safe() {
            write!(out, "{value}").map_err(minijinja::Error::from)
        } else {
            out.write_str(&escape_html(&value.to_string()))
                .map_err(minijinja::Error::from)
        }
    });
    for (name, src) in TEMPLATES {
        env.add_template(name, src)
            .with_context(|| format!("report template {name} does not compile"))?;
    }
    Ok(env)
}

// ------------------------------------------------------------------------------------------------
// View model
// ------------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct GridLine {
    y: String,
    label: String,
    stroke: &'static str,
}

#[derive(Serialize)]
struct XLabel {
    x: String,
    label: String,
}

#[derive(Serialize)]
struct Dot {
    cx: String,
    cy: String,
    title: String,
}

#[derive(Serialize)]
struct Series {
    name: String,
    color: &'static str,
    polylines: Vec<String>,
    dots: Vec<Dot>,
}

/// An SVG line chart, y from −1 to 1, x = positions 0..n.
#[derive(Serialize)]
struct LineChart {
    w: f64,
    h: f64,
    left: f64,
    right: f64,
    label_x: f64,
    label_y: f64,
    aria: String,
    grid: Vec<GridLine>,
    xlabels: Vec<XLabel>,
    series: Vec<Series>,
    /// Hollow markers on the x axis for suppressed points.
    suppressed: Vec<Dot>,
}

/// One line: per x position, (value, tooltip) or None (a gap), and whether a gap is a suppression.
struct LineInput {
    name: String,
    points: Vec<Option<(f64, String)>>,
    suppressed: Vec<Option<String>>,
}

fn line_chart(
    aria: &str,
    n: usize,
    labels: Vec<(usize, String)>,
    lines: Vec<LineInput>,
) -> LineChart {
    let (w, h, l, r, t, b) = (1080.0, 300.0, 48.0, 40.0, 14.0, 34.0);
    let span = (n.max(2) - 1) as f64;
    let x = |i: usize| l + i as f64 / span * (w - l - r);
    let y = |v: f64| t + (1.0 - v) / 2.0 * (h - t - b);
    let grid = [-1.0f64, -0.5, 0.0, 0.5, 1.0]
        .iter()
        .map(|g| GridLine {
            y: format!("{:.1}", y(*g)),
            label: format!("{g:+.1}"),
            stroke: if *g == 0.0 { "#9aa3b2" } else { "#e6e8ec" },
        })
        .collect();
    let xlabels = labels
        .into_iter()
        .map(|(i, label)| XLabel {
            x: format!("{:.1}", x(i)),
            label,
        })
        .collect();
    let mut suppressed = Vec::new();
    let series = lines
        .into_iter()
        .enumerate()
        .map(|(si, line)| {
            let color = PALETTE[si % PALETTE.len()];
            let mut polylines = Vec::new();
            let mut seg: Vec<String> = Vec::new();
            let mut dots = Vec::new();
            for (i, p) in line.points.iter().enumerate() {
                match p {
                    Some((v, title)) => {
                        seg.push(format!("{:.1},{:.1}", x(i), y(*v)));
                        dots.push(Dot {
                            cx: format!("{:.1}", x(i)),
                            cy: format!("{:.1}", y(*v)),
                            title: title.clone(),
                        });
                    }
                    None if !seg.is_empty() => polylines.push(std::mem::take(&mut seg).join(" ")),
                    None => {}
                }
            }
            if !seg.is_empty() {
                polylines.push(seg.join(" "));
            }
            for (i, s) in line.suppressed.iter().enumerate() {
                if let Some(title) = s {
                    suppressed.push(Dot {
                        cx: format!("{:.1}", x(i)),
                        cy: format!("{:.1}", h - b),
                        title: title.clone(),
                    });
                }
            }
            Series {
                name: line.name,
                color,
                polylines,
                dots,
            }
        })
        .collect();
    LineChart {
        w,
        h,
        left: l,
        right: w - r,
        label_x: l - 6.0,
        label_y: h - 12.0,
        aria: aria.to_string(),
        grid,
        xlabels,
        series,
        suppressed,
    }
}

fn brand_trend(d: &ReportData, brands: &[String]) -> Option<LineChart> {
    let days: BTreeSet<NaiveDate> = brands
        .iter()
        .flat_map(|b| d.trend[b].keys().copied())
        .collect();
    let (first, last) = (*days.first()?, *days.last()?);
    let total = ((last - first).num_days() + 1) as usize;
    let step = ((total as f64) / 10.0).ceil().max(1.0) as usize;
    let labels = (0..total)
        .step_by(step)
        .map(|i| {
            (
                i,
                (first + Duration::days(i as i64))
                    .format("%m-%d")
                    .to_string(),
            )
        })
        .collect();
    let lines = brands
        .iter()
        .map(|brand| {
            let series = &d.trend[brand];
            let points = (0..total)
                .map(|i| {
                    let day = first + Duration::days(i as i64);
                    net_for(series, day).map(|v| {
                        let m = series.get(&day).map(|x| x.2).unwrap_or(0);
                        (v, format!("{brand} {day}: {v:+.2} ({m} mentions)"))
                    })
                })
                .collect();
            LineInput {
                name: brand.clone(),
                points,
                suppressed: vec![None; total],
            }
        })
        .collect();
    Some(line_chart("Net sentiment per brand", total, labels, lines))
}

#[derive(Serialize)]
struct Bar {
    label: String,
    title: String,
    y: String,
    text_y: String,
    width: String,
    text_x: String,
    color: &'static str,
    value: String,
}

#[derive(Serialize)]
struct BarChart {
    w: f64,
    h: f64,
    label_w: f64,
    label_x: f64,
    bar: f64,
    bars: Vec<Bar>,
}

fn sov_chart(sov: &[(String, String, i64, f64)]) -> Option<BarChart> {
    if sov.is_empty() {
        return None;
    }
    let (w, bar, gap, label_w) = (1080.0, 22.0, 8.0, 220.0);
    let h = sov.len() as f64 * (bar + gap) + gap;
    let max = sov.iter().map(|x| x.3).fold(0.0, f64::max).max(1e-9);
    let bars = sov
        .iter()
        .enumerate()
        .map(|(i, (brand, kind, m, v))| {
            let yy = gap + i as f64 * (bar + gap);
            let bw = v / max * (w - label_w - 120.0);
            Bar {
                label: brand.chars().take(30).collect(),
                title: format!("{brand}: {m} mentions"),
                y: format!("{yy:.1}"),
                text_y: format!("{:.1}", yy + bar * 0.72),
                width: format!("{bw:.1}"),
                text_x: format!("{:.1}", label_w + bw + 6.0),
                color: if kind == "brand" {
                    "#1f77b4"
                } else {
                    "#9aa3b2"
                },
                value: format!("{:.1}% ({m})", v * 100.0),
            }
        })
        .collect();
    Some(BarChart {
        w,
        h,
        label_w,
        label_x: label_w - 8.0,
        bar,
        bars,
    })
}

/// A heat map table. `kind`: `value`, `suppressed` or `empty`.
#[derive(Serialize)]
struct HeatCell {
    kind: &'static str,
    style: String,
    text: String,
    title: String,
}

#[derive(Serialize)]
struct HeatRowView {
    label: String,
    cells: Vec<HeatCell>,
}

#[derive(Serialize)]
struct Heat {
    corner: String,
    columns: Vec<String>,
    rows: Vec<HeatRowView>,
}

/// white (0) → red (1)
fn heat_style(v: f64) -> String {
    let v = v.clamp(0.0, 1.0);
    let lerp = |a: f64, b: f64| (a + (b - a) * v).round() as u8;
    format!(
        "background:#{:02x}{:02x}{:02x};color:{}",
        lerp(255.0, 198.0),
        lerp(255.0, 40.0),
        lerp(255.0, 40.0),
        if v > 0.55 { "#fff" } else { "#1d2330" }
    )
}

/// −1 red … 0 white … +1 green
fn net_style(v: f64) -> String {
    let v = v.clamp(-1.0, 1.0);
    let (r, g, b) = if v < 0.0 {
        let a = -v;
        (
            255.0 + (198.0 - 255.0) * a,
            255.0 + (40.0 - 255.0) * a,
            255.0 + (40.0 - 255.0) * a,
        )
    } else {
        (
            255.0 + (26.0 - 255.0) * v,
            255.0 + (127.0 - 255.0) * v,
            255.0 + (55.0 - 255.0) * v,
        )
    };
    format!(
        "background:#{:02x}{:02x}{:02x};color:{}",
        r.round() as u8,
        g.round() as u8,
        b.round() as u8,
        if v.abs() > 0.55 { "#fff" } else { "#1d2330" }
    )
}

fn hr_heat(d: &ReportData) -> Option<Heat> {
    let (topics, rows) = d.heatmap();
    if rows.is_empty() || topics.is_empty() {
        return None;
    }
    // Groups suppressed in every week shown get a row of suppressed cells.
    let shown: BTreeSet<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let suppressed: BTreeSet<String> = d
        .weekly_rows
        .iter()
        .filter(|r| r.suppressed)
        .map(|r| format!("{} · {}", r.department, r.client_type))
        .filter(|l| !shown.contains(l.as_str()))
        .collect();
    let k = d.weekly_rows.first().map(|r| r.min_group_size).unwrap_or(5);
    let sup_rows = suppressed.into_iter().map(|label| HeatRowView {
        label,
        cells: topics
            .iter()
            .map(|_| HeatCell {
                kind: "suppressed",
                style: String::new(),
                text: "suppressed".into(),
                title: format!("fewer than {k} people"),
            })
            .collect(),
    });
    Some(Heat {
        corner: "department · client type".into(),
        rows: rows
            .iter()
            .map(|(label, cells)| HeatRowView {
                label: label.clone(),
                cells: topics
                    .iter()
                    .map(|t| match cells.get(t) {
                        Some((m, v)) => HeatCell {
                            kind: "value",
                            style: heat_style(*v),
                            text: format!("{:.0}%", v * 100.0),
                            title: format!("{m} mentions"),
                        },
                        None => HeatCell {
                            kind: "empty",
                            style: String::new(),
                            text: "—".into(),
                            title: String::new(),
                        },
                    })
                    .collect(),
            })
            .chain(sup_rows)
            .collect(),
        columns: topics,
    })
}

#[derive(Serialize)]
struct SpikeView {
    day: String,
    brand: String,
    channel: String,
    language: String,
    mentions: i64,
    net_class: &'static str,
    net: String,
    why: String,
}

#[derive(Serialize)]
struct MentionView {
    time: String,
    brand: String,
    channel: String,
    language: String,
    engagement: i64,
    score: String,
    text: String,
}

#[derive(Serialize)]
struct WeeklyView {
    week: String,
    department: String,
    client_type: String,
    suppressed: bool,
    k: i64,
    respondents: String,
    negative: String,
    net_class: &'static str,
    net: String,
    attrition: String,
    enps: String,
    topics: String,
}

#[derive(Serialize)]
struct DriverView {
    provider: String,
    topics: Vec<String>,
}

#[derive(Serialize)]
struct ServiceTableRow {
    week: String,
    provider: String,
    requester: String,
    total: bool,
    suppressed: bool,
    suppression: String,
    responses: String,
    negative: String,
    net_class: &'static str,
    net: String,
    change: String,
    csat: String,
    nps: String,
}

#[derive(Serialize)]
struct ServicesView {
    k: i64,
    week: String,
    heat: Option<Heat>,
    trend: Option<LineChart>,
    drivers: Vec<DriverView>,
    rows: Vec<ServiceTableRow>,
}

fn net_class(v: Option<f64>) -> &'static str {
    match v {
        Some(v) if v > 0.05 => "num pos",
        Some(v) if v < -0.05 => "num neg",
        _ => "num",
    }
}

fn fmt_time(t: Option<i64>) -> String {
    t.and_then(chrono::DateTime::from_timestamp_micros)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "—".into())
}

fn services_view(d: &ReportData) -> ServicesView {
    let k = d.services.first().map(|r| r.min_group_size).unwrap_or(5);
    let hm = services::heat_map(&d.services);
    let week = hm.as_ref().map(|h| h.week.clone()).unwrap_or_default();
    let heat = hm.map(|hm| Heat {
        corner: "requester (department · client type)".into(),
        rows: hm
            .rows
            .iter()
            .map(|(q, cells)| HeatRowView {
                label: q.clone(),
                cells: cells
                    .iter()
                    .map(|c| match c {
                        Cell::Net { net, responses } => HeatCell {
                            kind: "value",
                            style: net.map(net_style).unwrap_or_default(),
                            text: fmt_net(*net),
                            title: format!("{responses} responses"),
                        },
                        Cell::Suppressed(why) => HeatCell {
                            kind: "suppressed",
                            style: String::new(),
                            text: "suppressed".into(),
                            title: if why == "complementary" {
                                "suppressed so that a total cannot reveal a smaller cell".into()
                            } else {
                                format!("fewer than {k} people")
                            },
                        },
                        Cell::Empty => HeatCell {
                            kind: "empty",
                            style: String::new(),
                            text: "·".into(),
                            title: String::new(),
                        },
                    })
                    .collect(),
            })
            .collect(),
        columns: hm.providers,
    });
    let tr = services::trend(&d.services);
    let trend = (!tr.weeks.is_empty()).then(|| {
        let n = tr.weeks.len();
        let labels = tr
            .weeks
            .iter()
            .enumerate()
            .map(|(i, w)| (i, w.1.clone()))
            .collect();
        let lines = tr
            .series
            .iter()
            .map(|(p, vals)| LineInput {
                name: p.clone(),
                points: vals
                    .iter()
                    .zip(&tr.weeks)
                    .map(|(v, w)| match v {
                        Point::Net(Some(v)) => Some((*v, format!("{p} {}: {v:+.2}", w.1))),
                        _ => None,
                    })
                    .collect(),
                suppressed: vals
                    .iter()
                    .zip(&tr.weeks)
                    .map(|(v, w)| {
                        (*v == Point::Suppressed)
                            .then(|| format!("{p} {}: suppressed (fewer than {k} people)", w.1))
                    })
                    .collect(),
            })
            .collect();
        line_chart("Net sentiment per provider and week", n, labels, lines)
    });
    let drivers = services::drivers(&d.services, 4)
        .into_iter()
        .map(|(p, ds)| DriverView {
            provider: p,
            topics: ds
                .into_iter()
                .map(|(t, m, share, _)| {
                    format!("{t}: {:.0}% negative of {m} mentions", share * 100.0)
                })
                .collect(),
        })
        .collect();
    let latest = d.services.iter().map(|r| r.week_start).max();
    let rows = d
        .services
        .iter()
        .filter(|r| Some(r.week_start) == latest)
        .map(|r| ServiceTableRow {
            week: r.week.clone(),
            provider: r.provider.clone(),
            requester: if r.is_total() {
                "all requesters".into()
            } else {
                r.requester()
            },
            total: r.is_total(),
            suppressed: r.suppressed,
            suppression: r.suppression.clone().unwrap_or_default(),
            responses: r.responses.map(|x| x.to_string()).unwrap_or_default(),
            negative: fmt_pct(r.negative_share),
            net_class: net_class(r.net_sentiment),
            net: fmt_net(r.net_sentiment),
            change: fmt_net(r.net_sentiment_change),
            csat: match (r.csat_mean, r.csat_top2_share) {
                (Some(m), Some(t)) => format!("{m:.2} ({:.0}% 4–5)", t * 100.0),
                _ => "—".into(),
            },
            nps: r
                .internal_nps
                .map(|x| format!("{x:+.0}"))
                .unwrap_or_else(|| "—".into()),
        })
        .collect();
    ServicesView {
        k,
        week,
        heat,
        trend,
        drivers,
        rows,
    }
}

/// Everything the templates see.
#[derive(Serialize)]
struct Page {
    date: String,
    out: String,
    trend_days: i64,
    brand_trend: Option<LineChart>,
    sov: Option<BarChart>,
    spikes: Vec<SpikeView>,
    mentions: Vec<MentionView>,
    k: i64,
    hr_heat: Option<Heat>,
    weekly: Vec<WeeklyView>,
    services: ServicesView,
}

/// The self-contained HTML report.
pub fn render_html(d: &ReportData) -> anyhow::Result<String> {
    let brands = d.brands_ordered(PALETTE.len());
    let spikes: Vec<SpikeView> = d
        .spikes()
        .into_iter()
        .map(|r| SpikeView {
            day: r.day.to_string(),
            brand: r.brand.clone(),
            channel: r.channel.clone(),
            language: r.language.clone(),
            mentions: r.mentions,
            net_class: net_class(r.net_sentiment),
            net: fmt_net(r.net_sentiment),
            why: r.spike_reason.clone().unwrap_or_default(),
        })
        .collect();
    let mentions: Vec<MentionView> = d
        .negative_mentions
        .iter()
        .map(|m| MentionView {
            time: fmt_time(m.event_time),
            brand: m.brand.clone().unwrap_or_else(|| "—".into()),
            channel: m.channel.clone().unwrap_or_else(|| "—".into()),
            language: m.language.clone(),
            engagement: m.engagement,
            score: format!("{:+.2}", m.sentiment_score),
            text: m.text.chars().take(400).collect(),
        })
        .collect();
    let weekly: Vec<WeeklyView> = d
        .weekly_rows
        .iter()
        .map(|r| WeeklyView {
            week: r.week.clone(),
            department: r.department.clone(),
            client_type: r.client_type.clone(),
            suppressed: r.suppressed,
            k: r.min_group_size,
            respondents: r.respondents.map(|x| x.to_string()).unwrap_or_default(),
            negative: fmt_pct(r.negative_share),
            net_class: net_class(r.net_sentiment),
            net: fmt_net(r.net_sentiment),
            attrition: r.attrition_risk.map(|x| x.to_string()).unwrap_or_default(),
            enps: r
                .enps
                .map(|x| format!("{x:+.0}"))
                .unwrap_or_else(|| "—".into()),
            topics: r
                .topics
                .iter()
                .take(4)
                .map(|t| format!("{} ({:.0}% neg)", t.topic, t.negative_share * 100.0))
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect();
    let page = Page {
        date: d.date.to_string(),
        out: d.out.display().to_string(),
        trend_days: TREND_DAYS,
        brand_trend: brand_trend(d, &brands),
        sov: sov_chart(&d.share_of_voice()),
        spikes,
        mentions,
        k: d.weekly_rows.first().map(|r| r.min_group_size).unwrap_or(5),
        hr_heat: hr_heat(d),
        weekly,
        services: services_view(d),
    };
    let env = environment()?;
    let tpl = env.get_template("report.html")?;
    tpl.render(Value::from(Serde(&page)))
        .context("cannot render the HTML report")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_template_carries_the_csp_and_no_script() {
        let (_, page) = TEMPLATES[0];
        assert!(page.contains(&format!("content=\"{CSP}\"")));
        for (name, src) in TEMPLATES {
            assert!(!src.to_lowercase().contains("<script"), "{name}");
            assert!(!src.contains("|safe"), "{name} marks a value safe");
        }
        environment().unwrap();
    }

    #[test]
    fn every_value_is_escaped_by_the_formatter() {
        let env = {
            let mut e = environment().unwrap();
            e.add_template("t.html", "<p title=\"{{ x }}\">{{ x }}</p>")
                .unwrap();
            e
        };
        let out = env
            .get_template("t.html")
            .unwrap()
            .render(minijinja::context! { x => "<b a='1'>&\u{1b}" })
            .unwrap();
        assert_eq!(
            out,
            "<p title=\"&lt;b a=&#39;1&#39;&gt;&amp; \">&lt;b a=&#39;1&#39;&gt;&amp; </p>"
        );
    }
}
