//! Internal services and aspects with hand-computed answers (no model: scores are given).
//!
//! Provider by column, by value map, by text in pt / es / en, none, and never the requester's own
//! department; a mixed sentence pair giving one positive and one negative aspect; CSAT and internal
//! NPS by hand; a suppressed cell that subtraction cannot recover; two nights over one week that
//! cannot be differenced (engagement_weekly too).

use crate::common::support;

use arrow::array::{Array, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use pulso::aggregate::{self, AggregateConfig, TopicStat, ENGAGEMENT_WEEKLY};
use pulso::enrich::{words, Taxonomy};
use pulso::record::{Aspect, ClientType, Scored, Segment, Sentiment};
use pulso::services::aspects::{aspects, ScoredSentence, SentenceBatch};
use pulso::services::provider::{Departments, ProviderResolver};
use pulso::services::sentences;
use pulso::services::weekly::INTERNAL_SERVICE_WEEKLY;
use std::collections::BTreeMap;
use support::*;

fn resolver() -> ProviderResolver {
    let mut map = BTreeMap::new();
    map.insert("TI-Suporte N1".to_string(), "IT".to_string());
    map.insert("Folha de pagamento".to_string(), "HR".to_string());
    ProviderResolver::new(Departments::builtin(), &map)
}

fn by_text(text: &str, dept: Option<&str>) -> Option<(String, String)> {
    resolver()
        .from_text(&words(text), dept)
        .map(|m| (m.provider, m.reason))
}

fn pair(p: &str, r: &str) -> Option<(String, String)> {
    Some((p.to_string(), r.to_string()))
}

#[test]
fn provider_by_column_and_by_value_map() {
    let r = resolver();
    let m = r.from_column("queue", Some("TI-Suporte N1")).unwrap();
    assert_eq!(
        (m.provider.as_str(), m.reason.as_str()),
        ("IT", "map:TI-Suporte N1")
    );
    // The map is case- and accent-insensitive; the reason keeps the value as read.
    let m = r
        .from_column("queue", Some(" FOLHA DE PAGAMENTO "))
        .unwrap();
    assert_eq!(
        (m.provider.as_str(), m.reason.as_str()),
        ("HR", "map:FOLHA DE PAGAMENTO")
    );
    // A value not in the map is used as it is.
    let m = r.from_column("queue", Some("Facilities")).unwrap();
    assert_eq!(
        (m.provider.as_str(), m.reason.as_str()),
        ("Facilities", "column:queue")
    );
    assert!(r.from_column("queue", Some("   ")).is_none());
    assert!(r.from_column("queue", None).is_none());
}

#[test]
fn provider_by_text_in_three_languages_accent_and_case_insensitive() {
    assert_eq!(
        by_text(
            "O SUPORTE TECNICO demorou três dias para responder",
            Some("Sales")
        ),
        pair("IT", "text:suporte técnico")
    );
    assert_eq!(
        by_text("La nómina llegó tarde otra vez", Some("Ventas")),
        pair("HR", "text:nómina")
    );
    assert_eq!(
        by_text("Accounts payable never answers about the invoice", None),
        pair("Finance", "text:accounts payable")
    );
    assert_eq!(
        by_text("O pedido de compra 55102 está parado há uma semana", None),
        pair("Procurement", "text:pedido de compra")
    );
    assert_eq!(
        by_text("Payroll got my overtime wrong", Some("Logistics")),
        pair("HR", "text:payroll")
    );
    // Earliest mention wins.
    assert_eq!(
        by_text("O RH mandou falar com a TI sobre o acesso", Some("Sales")),
        pair("HR", "text:RH")
    );
}

#[test]
fn provider_none_whole_words_and_never_the_own_department() {
    assert_eq!(
        by_text("Adoro minha equipe, ambiente ótimo", Some("Sales")),
        None
    );
    // Spanish "ti" ("for you") is not IT; "helpdesks" is not the whole word "helpdesk".
    assert_eq!(by_text("Esto es para ti, gracias", None), None);
    assert_eq!(by_text("We compared helpdesks last year", None), None);
    // An IT person complaining about their own systems does not rate IT; the next provider counts.
    assert_eq!(
        by_text("Os sistemas estão lentos e o RH não responde", Some("TI")),
        pair("HR", "text:RH")
    );
    assert_eq!(by_text("Os sistemas estão lentos", Some("IT")), None);
    assert_eq!(
        by_text("Os sistemas estão lentos", Some("Sales")),
        pair("IT", "text:sistemas")
    );
}

#[test]
fn a_custom_department_taxonomy_is_validated() {
    let d =
        Departments::parse("[Canteen]\naliases = [\"Cantina\"]\npt = [\"refeitório\"]\n").unwrap();
    assert_eq!(d.names(), ["Canteen"]);
    let r = ProviderResolver::new(d, &BTreeMap::new());
    let m = r
        .from_text(&words("O Refeitorio fechou cedo"), None)
        .unwrap();
    assert_eq!(
        (m.provider.as_str(), m.reason.as_str()),
        ("Canteen", "text:refeitório")
    );
    assert!(r
        .from_text(&words("O refeitório fechou"), Some("cantina"))
        .is_none());
    let e = Departments::parse("[Empty]\naliases = [\"x\"]\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("no terms"), "{e}");
}

fn sc(s: Sentiment, v: f32) -> Scored {
    scored(s, v)
}

#[test]
fn mixed_sentence_pair_gives_one_positive_and_one_negative_aspect() {
    let text = "Me sinto valorizado pelo meu gestor. Mas o salário é uma piada!";
    let ranges = sentences::split(text);
    assert_eq!(ranges.len(), 2);
    let sents = vec![
        ScoredSentence {
            range: ranges[0].clone(),
            scored: sc(Sentiment::Positive, 0.8),
        },
        ScoredSentence {
            range: ranges[1].clone(),
            scored: sc(Sentiment::Negative, -0.9),
        },
    ];
    let a = aspects(
        text,
        &sents,
        Segment::Internal,
        &Taxonomy::builtin(),
        &Departments::builtin(),
        Some("Sales"),
        None,
    );
    let got: Vec<(Option<&str>, Sentiment, u32)> = a
        .iter()
        .map(|x| (x.topic.as_deref(), x.sentiment, x.sentence))
        .collect();
    assert_eq!(
        got,
        [
            (Some("management"), Sentiment::Positive, 0),
            (Some("recognition"), Sentiment::Positive, 0),
            (Some("pay_benefits"), Sentiment::Negative, 1),
        ]
    );
    assert!(a.iter().all(|x| x.provider.is_none()));

    // engagement_weekly: the record scored negative as a whole, but recognition was raised in a
    // positive sentence, so its negative share is 0; pay_benefits' is 1.
    let out = tempfile::tempdir().unwrap();
    let signals: Vec<_> = (0..5)
        .map(|i| {
            S::new(ClientType::Employee, text, Sentiment::Negative, -0.3)
                .author(&format!("p{i}@corp"))
                .dept("Sales")
                .at("2026-11-04")
                .topics(&["management", "recognition", "pay_benefits"])
                .aspects(a.clone())
                .done()
        })
        .collect();
    let t = aggregate_run(
        &AggregateConfig::default(),
        out.path(),
        day("2026-11-09"),
        &signals,
    );
    let w = table(&t, ENGAGEMENT_WEEKLY);
    let topics: Vec<TopicStat> = serde_json::from_str(
        aggregate::col::<StringArray>(w, "top_topics")
            .unwrap()
            .value(0),
    )
    .unwrap();
    let share = |n: &str| topics.iter().find(|t| t.topic == n).unwrap().negative_share;
    assert_eq!(share("recognition"), 0.0);
    assert_eq!(share("management"), 0.0);
    assert_eq!(share("pay_benefits"), 1.0);
    // The record-level sentiment is unchanged: 5 negative responses.
    assert_eq!(
        aggregate::col::<Float64Array>(w, "negative_share")
            .unwrap()
            .value(0),
        1.0
    );
}

#[test]
fn provider_aspects_follow_mentions_and_the_column_provider() {
    let text = "A TI resolveu rápido. O RH sumiu. Ninguém responde!";
    let r = sentences::split(text);
    assert_eq!(r.len(), 3);
    let s = |i: usize, v: Sentiment| ScoredSentence {
        range: r[i].clone(),
        scored: sc(v, 0.0),
    };
    let sents = vec![
        s(0, Sentiment::Positive),
        s(1, Sentiment::Negative),
        s(2, Sentiment::Negative),
    ];
    let col = pulso::services::provider::ProviderMatch {
        provider: "Facilities".into(),
        reason: "column:queue".into(),
        from_text: false,
    };
    let prov = |a: &[Aspect]| -> Vec<(String, u32)> {
        a.iter()
            .filter_map(|x| x.provider.clone().map(|p| (p, x.sentence)))
            .collect()
    };
    // Text only: "Ninguém responde!" is about the last provider named (HR).
    let a = aspects(
        text,
        &sents,
        Segment::Internal,
        &Taxonomy::builtin(),
        &Departments::builtin(),
        None,
        None,
    );
    assert_eq!(
        prov(&a),
        [("IT".into(), 0), ("HR".into(), 1), ("HR".into(), 2)]
    );
    // External signals never get provider aspects.
    let a = aspects(
        text,
        &sents,
        Segment::External,
        &Taxonomy::builtin(),
        &Departments::builtin(),
        None,
        None,
    );
    assert!(prov(&a).is_empty());
    // A column provider covers the sentences that name no provider before any mention.
    let t2 = "Demorou muito. A TI ajudou depois.";
    let r2 = sentences::split(t2);
    let s2: Vec<_> = r2
        .iter()
        .map(|x| ScoredSentence {
            range: x.clone(),
            scored: sc(Sentiment::Neutral, 0.0),
        })
        .collect();
    let a = aspects(
        t2,
        &s2,
        Segment::Internal,
        &Taxonomy::builtin(),
        &Departments::builtin(),
        None,
        Some(&col),
    );
    assert_eq!(prov(&a), [("Facilities".into(), 0), ("IT".into(), 1)]);
}

#[test]
fn sentences_share_the_scoring_call_and_single_sentences_are_not_scored_twice() {
    let texts = ["Uma frase só", "Primeira. Segunda!", "  "];
    let b = SentenceBatch::new(&texts, true);
    let all = b.texts(&texts);
    assert_eq!(
        all,
        [
            "Uma frase só",
            "Primeira. Segunda!",
            "  ",
            "Primeira.",
            "Segunda!"
        ]
    );
    assert_eq!(b.extra(), 2);
    let scores: Vec<Scored> = (0..all.len())
        .map(|i| sc(Sentiment::Neutral, i as f32 / 10.0))
        .collect();
    let u = b.unpack(scores, texts.len());
    assert_eq!(u.len(), 3);
    assert_eq!(u[0].1.len(), 1);
    assert_eq!(
        u[0].1[0].scored.sentiment_score, 0.0,
        "reuses the whole text's score"
    );
    let second: Vec<f32> = u[1].1.iter().map(|s| s.scored.sentiment_score).collect();
    assert_eq!(second, [0.3, 0.4]);
    assert!(u[2].1.is_empty());
    let off = SentenceBatch::new(&texts, false);
    assert_eq!(off.texts(&texts).len(), 3);
    assert!(off
        .unpack(vec![sc(Sentiment::Neutral, 0.0); 3], 3)
        .iter()
        .all(|x| x.1.is_empty()));
}

// ------------------------------------------------------------------------------------------------
// internal_service_weekly
// ------------------------------------------------------------------------------------------------

fn cfg() -> AggregateConfig {
    AggregateConfig::default() // min_group_size 5
}

/// One response about `provider` from `who` in `dept`.
fn resp(who: &str, dept: &str, provider: &str, s: Sentiment, d: &str) -> S {
    let v = match s {
        Sentiment::Negative => -0.8,
        Sentiment::Neutral => 0.0,
        Sentiment::Positive => 0.8,
    };
    S::new(ClientType::Employee, "resposta", s, v)
        .author(who)
        .dept(dept)
        .at(d)
        .provider(provider)
}

fn s_at(b: &RecordBatch, c: &str, i: usize) -> Option<String> {
    let a = aggregate::col::<StringArray>(b, c).unwrap();
    (!a.is_null(i)).then(|| a.value(i).to_string())
}
fn i_at(b: &RecordBatch, c: &str, i: usize) -> Option<i64> {
    let a = aggregate::col::<Int64Array>(b, c).unwrap();
    (!a.is_null(i)).then(|| a.value(i))
}
fn f_at(b: &RecordBatch, c: &str, i: usize) -> Option<f64> {
    let a = aggregate::col::<Float64Array>(b, c).unwrap();
    (!a.is_null(i)).then(|| a.value(i))
}
fn sup_at(b: &RecordBatch, i: usize) -> bool {
    aggregate::col::<BooleanArray>(b, "suppressed")
        .unwrap()
        .value(i)
}
fn find(b: &RecordBatch, week: &str, provider: &str, dept: &str) -> usize {
    (0..b.num_rows())
        .find(|&i| {
            s_at(b, "week", i).as_deref() == Some(week)
                && s_at(b, "provider", i).as_deref() == Some(provider)
                && s_at(b, "department", i).as_deref() == Some(dept)
        })
        .unwrap_or_else(|| panic!("no row {week} {provider} {dept}"))
}

#[test]
fn csat_and_internal_nps_by_hand() {
    use Sentiment::*;
    let out = tempfile::tempdir().unwrap();
    let d = "2026-11-03"; // W45
                          // Sales rates IT: 6 people. ratings 5,4,4,3,1,2 → mean 19/6, top2 3/6.
                          // NPS scores 10, 9, 8, 7, 3, 6 → promoters 2, detractors 2 → 0. p5 also answered 0 earlier.
    let rows = [
        ("a", Positive, 5.0, 10.0),
        ("b", Positive, 4.0, 9.0),
        ("c", Neutral, 4.0, 8.0),
        ("d", Neutral, 3.0, 7.0),
        ("e", Negative, 1.0, 3.0),
        ("f", Negative, 2.0, 6.0),
    ];
    let mut signals = vec![resp("f@corp", "Sales", "IT", Negative, "2026-11-02")
        .score(0.0)
        .done()];
    for (who, s, rating, score) in rows {
        signals.push(
            resp(&format!("{who}@corp"), "Sales", "IT", s, d)
                .rating(rating)
                .score(score)
                .done(),
        );
    }
    let t = aggregate_run(&cfg(), out.path(), day("2026-11-09"), &signals);
    let w = table(&t, INTERNAL_SERVICE_WEEKLY);
    let i = find(w, "2026-W45", "IT", "Sales");
    assert!(!sup_at(w, i));
    assert_eq!(s_at(w, "level", i).as_deref(), Some("cell"));
    assert_eq!(i_at(w, "responses", i), Some(7));
    assert_eq!(i_at(w, "respondents", i), Some(6));
    assert_eq!(i_at(w, "csat_responses", i), Some(6));
    assert!((f_at(w, "csat_mean", i).unwrap() - 19.0 / 6.0).abs() < 1e-12);
    assert!((f_at(w, "csat_top2_share", i).unwrap() - 0.5).abs() < 1e-12);
    assert_eq!(f_at(w, "internal_nps", i), Some(0.0));
    assert_eq!(i_at(w, "nps_respondents", i), Some(6));
    // 3 negative of 7 responses, 2 positive: net (2 − 3) / 5.
    assert!((f_at(w, "negative_share", i).unwrap() - 3.0 / 7.0).abs() < 1e-12);
    assert!((f_at(w, "net_sentiment", i).unwrap() + 0.2).abs() < 1e-12);
    // The provider total equals the only cell.
    let tot = find(w, "2026-W45", "IT", "(all)");
    assert_eq!(s_at(w, "level", tot).as_deref(), Some("provider"));
    assert_eq!(i_at(w, "responses", tot), Some(7));
    assert!((f_at(w, "csat_mean", tot).unwrap() - 19.0 / 6.0).abs() < 1e-12);
}

#[test]
fn provider_sentiment_comes_from_the_aspects_about_the_provider() {
    use Sentiment::*;
    let out = tempfile::tempdir().unwrap();
    // Whole text negative, but the sentence about IT is positive.
    let aspect = |p: &str, s| Aspect {
        topic: None,
        provider: Some(p.into()),
        sentiment: s,
        sentiment_score: 0.0,
        sentence: 0,
    };
    let signals: Vec<_> = (0..5)
        .map(|i| {
            resp(&format!("p{i}@corp"), "Ops", "IT", Negative, "2026-11-04")
                .aspects(vec![aspect("IT", Positive), aspect("HR", Negative)])
                .done()
        })
        .collect();
    let t = aggregate_run(&cfg(), out.path(), day("2026-11-09"), &signals);
    let w = table(&t, INTERNAL_SERVICE_WEEKLY);
    let i = find(w, "2026-W45", "IT", "Ops");
    assert_eq!(f_at(w, "negative_share", i), Some(0.0));
    assert_eq!(f_at(w, "net_sentiment", i), Some(1.0));
}

#[test]
fn a_suppressed_cell_cannot_be_recovered_by_subtraction() {
    use Sentiment::*;
    let out = tempfile::tempdir().unwrap();
    let d = "2026-11-04";
    let mut signals = Vec::new();
    // HR as provider: Sales 7 people, Ops 6 people, Legal 2 people (all negative, with ratings 1).
    for i in 0..7 {
        signals.push(
            resp(
                &format!("s{i}@c"),
                "Sales",
                "HR",
                if i < 3 { Negative } else { Positive },
                d,
            )
            .rating(4.0)
            .done(),
        );
    }
    for i in 0..6 {
        signals.push(
            resp(
                &format!("o{i}@c"),
                "Ops",
                "HR",
                if i < 1 { Negative } else { Positive },
                d,
            )
            .rating(5.0)
            .done(),
        );
    }
    for i in 0..2 {
        signals.push(
            resp(&format!("l{i}@c"), "Legal", "HR", Negative, d)
                .rating(1.0)
                .done(),
        );
    }
    let t = aggregate_run(&cfg(), out.path(), day("2026-11-09"), &signals);
    let w = table(&t, INTERNAL_SERVICE_WEEKLY);
    let legal = find(w, "2026-W45", "HR", "Legal");
    let ops = find(w, "2026-W45", "HR", "Ops");
    let sales = find(w, "2026-W45", "HR", "Sales");
    let total = find(w, "2026-W45", "HR", "(all)");
    assert!(sup_at(w, legal));
    assert_eq!(
        s_at(w, "suppression", legal).as_deref(),
        Some("min_group_size")
    );
    // Ops (6 people) is the smallest published sibling: suppressed so that Legal is not alone.
    assert!(sup_at(w, ops));
    assert_eq!(
        s_at(w, "suppression", ops).as_deref(),
        Some("complementary")
    );
    assert!(!sup_at(w, sales));
    assert!(!sup_at(w, total));

    // The attack: total − every published cell, for each additive count.
    let true_legal = (2i64, 2i64, 2i64); // responses, negatives, ratings
    let negatives = |i: usize| -> i64 {
        (f_at(w, "negative_share", i).unwrap() * i_at(w, "responses", i).unwrap() as f64).round()
            as i64
    };
    let published_cells: Vec<usize> = (0..w.num_rows())
        .filter(|&i| s_at(w, "level", i).as_deref() == Some("cell") && !sup_at(w, i))
        .collect();
    let rec_resp = i_at(w, "responses", total).unwrap()
        - published_cells
            .iter()
            .map(|&i| i_at(w, "responses", i).unwrap())
            .sum::<i64>();
    let rec_neg = negatives(total) - published_cells.iter().map(|&i| negatives(i)).sum::<i64>();
    let rec_ratings = i_at(w, "csat_responses", total).unwrap()
        - published_cells
            .iter()
            .map(|&i| i_at(w, "csat_responses", i).unwrap())
            .sum::<i64>();
    // What the subtraction yields is Legal and Ops pooled (8 people), not Legal.
    assert_eq!((rec_resp, rec_neg, rec_ratings), (8, 3, 8));
    assert_ne!((rec_resp, rec_neg, rec_ratings), true_legal);
    // And no suppressed cell's numbers are printed anywhere.
    for i in [legal, ops] {
        for c in [
            "responses",
            "respondents",
            "csat_responses",
            "nps_respondents",
        ] {
            assert_eq!(i_at(w, c, i), None, "{c}");
        }
        for c in [
            "negative_share",
            "net_sentiment",
            "csat_mean",
            "csat_top2_share",
            "internal_nps",
        ] {
            assert_eq!(f_at(w, c, i), None, "{c}");
        }
    }
    // The CSAT mean of the total, minus Sales' share, gives the pooled Legal+Ops mean only.
    let tot_sum = f_at(w, "csat_mean", total).unwrap() * 15.0;
    let sales_sum = f_at(w, "csat_mean", sales).unwrap() * 7.0;
    let pooled = (tot_sum - sales_sum) / 8.0;
    assert!((pooled - (6.0 * 5.0 + 2.0 * 1.0) / 8.0).abs() < 1e-9);
    assert!(
        (pooled - 1.0).abs() > 0.5,
        "the Legal mean (1.0) is not recovered"
    );
}

#[test]
fn engagement_weekly_minus_provider_cells_cannot_reveal_a_suppressed_cell() {
    use Sentiment::*;
    let out = tempfile::tempdir().unwrap();
    let d = "2026-11-04";
    let mut signals = Vec::new();
    // Sales (8 people, published in engagement_weekly): 6 rate IT, 2 rate HR.
    for i in 0..6 {
        signals.push(resp(&format!("s{i}@c"), "Sales", "IT", Positive, d).done());
    }
    for i in 6..8 {
        signals.push(resp(&format!("s{i}@c"), "Sales", "HR", Negative, d).done());
    }
    // Ops (6 people) rate HR, so the HR total is published.
    for i in 0..6 {
        signals.push(resp(&format!("o{i}@c"), "Ops", "HR", Positive, d).done());
    }
    let t = aggregate_run(&cfg(), out.path(), day("2026-11-09"), &signals);
    let w = table(&t, INTERNAL_SERVICE_WEEKLY);
    let e = table(&t, ENGAGEMENT_WEEKLY);
    let sales_hr = find(w, "2026-W45", "HR", "Sales");
    let ops_hr = find(w, "2026-W45", "HR", "Ops");
    let sales_it = find(w, "2026-W45", "IT", "Sales");
    assert_eq!(
        s_at(w, "suppression", sales_hr).as_deref(),
        Some("min_group_size")
    );
    assert_eq!(
        s_at(w, "suppression", ops_hr).as_deref(),
        Some("complementary")
    );
    // Without this, engagement_weekly's Sales row (8 responses) − Sales·IT (6) = Sales·HR (2).
    assert_eq!(
        s_at(w, "suppression", sales_it).as_deref(),
        Some("complementary")
    );
    let eng_sales = (0..e.num_rows())
        .find(|&i| s_at(e, "department", i).as_deref() == Some("Sales"))
        .unwrap();
    assert_eq!(i_at(e, "responses", eng_sales), Some(8));
    let published_sales: i64 = (0..w.num_rows())
        .filter(|&i| s_at(w, "department", i).as_deref() == Some("Sales") && !sup_at(w, i))
        .map(|i| i_at(w, "responses", i).unwrap())
        .sum();
    assert_eq!(
        8 - published_sales,
        8,
        "the subtraction yields all 8 Sales people pooled"
    );
}

#[test]
fn a_total_under_the_threshold_is_suppressed_with_its_cells() {
    let out = tempfile::tempdir().unwrap();
    let signals: Vec<_> = (0..4)
        .map(|i| {
            resp(
                &format!("x{i}@c"),
                "Sales",
                "Legal",
                Sentiment::Negative,
                "2026-11-04",
            )
            .done()
        })
        .collect();
    let t = aggregate_run(&cfg(), out.path(), day("2026-11-09"), &signals);
    let w = table(&t, INTERNAL_SERVICE_WEEKLY);
    assert_eq!(w.num_rows(), 2);
    assert!((0..2).all(|i| sup_at(w, i)));
    assert!((0..2).all(|i| i_at(w, "responses", i).is_none()));
}

/// Rows of a weekly table for one week as (key, responses) pairs.
fn week_rows(b: &RecordBatch, week: &str) -> Vec<(String, Option<i64>)> {
    (0..b.num_rows())
        .filter(|&i| s_at(b, "week", i).as_deref() == Some(week))
        .map(|i| (s_at(b, "department", i).unwrap(), i_at(b, "responses", i)))
        .collect()
}

#[test]
fn two_nights_over_one_week_cannot_be_differenced() {
    use Sentiment::*;
    let out = tempfile::tempdir().unwrap();
    // A cumulative export: night 1 holds 6 responses of W45, night 2 the same 6 plus one late one.
    let base: Vec<_> = (0..6)
        .map(|i| resp(&format!("p{i}@c"), "Sales", "IT", Positive, "2026-11-04").done())
        .collect();
    let mut night2 = base.clone();
    night2.push(resp("late@c", "Sales", "IT", Negative, "2026-11-05").done());

    // Night of Thursday 2026-11-05: W45 is not complete, nothing about it is published.
    let t1 = aggregate_run(&cfg(), out.path(), day("2026-11-05"), &base);
    assert!(week_rows(table(&t1, INTERNAL_SERVICE_WEEKLY), "2026-W45").is_empty());
    // Monday 2026-11-09: W45 is complete and published once.
    let t2 = aggregate_run(&cfg(), out.path(), day("2026-11-09"), &base);
    let w2 = week_rows(table(&t2, INTERNAL_SERVICE_WEEKLY), "2026-W45");
    assert_eq!(w2, [("Sales".into(), Some(6)), ("(all)".into(), Some(6))]);
    // Tuesday: the export now has the late response; W45 is not published again, so there is no
    // second version to subtract the first from.
    let t3 = aggregate_run(&cfg(), out.path(), day("2026-11-10"), &night2);
    assert!(week_rows(table(&t3, INTERNAL_SERVICE_WEEKLY), "2026-W45").is_empty());
    // A re-run of Monday replaces Monday's partition and may publish W45 again.
    let t4 = aggregate_run(&cfg(), out.path(), day("2026-11-09"), &base);
    assert_eq!(
        week_rows(table(&t4, INTERNAL_SERVICE_WEEKLY), "2026-W45").len(),
        2
    );

    // The same rule for engagement_weekly.
    let e1 = aggregate_run(&cfg(), out.path(), day("2026-11-05"), &base);
    assert!(week_rows(table(&e1, ENGAGEMENT_WEEKLY), "2026-W45").is_empty());
    let e3 = aggregate_run(&cfg(), out.path(), day("2026-11-10"), &night2);
    assert!(week_rows(table(&e3, ENGAGEMENT_WEEKLY), "2026-W45").is_empty());
    let dirs = aggregate::partitions(&out.path().join(ENGAGEMENT_WEEKLY)).unwrap();
    let mut versions = 0;
    for (_, dir) in dirs {
        for b in aggregate::read_parquet_dir(&dir).unwrap() {
            versions += week_rows(&b, "2026-W45").len();
        }
    }
    assert_eq!(versions, 1, "W45 appears in exactly one partition");
}

#[test]
fn change_against_the_previous_week() {
    use Sentiment::*;
    let out = tempfile::tempdir().unwrap();
    // W44: 5 people, 1 negative, 4 positive → net 0.6. W45: 5 people, 3 negative, 2 positive → −0.2.
    let w44: Vec<_> = (0..5)
        .map(|i| {
            resp(
                &format!("p{i}@c"),
                "Sales",
                "IT",
                if i < 1 { Negative } else { Positive },
                "2026-10-28",
            )
            .done()
        })
        .collect();
    aggregate_run(&cfg(), out.path(), day("2026-11-02"), &w44);
    let w45: Vec<_> = (0..5)
        .map(|i| {
            resp(
                &format!("p{i}@c"),
                "Sales",
                "IT",
                if i < 3 { Negative } else { Positive },
                "2026-11-04",
            )
            .done()
        })
        .collect();
    let t = aggregate_run(&cfg(), out.path(), day("2026-11-09"), &w45);
    let w = table(&t, INTERNAL_SERVICE_WEEKLY);
    let i = find(w, "2026-W45", "IT", "Sales");
    assert!((f_at(w, "net_sentiment_change", i).unwrap() + 0.8).abs() < 1e-9);
    assert!((f_at(w, "negative_share_change", i).unwrap() - 0.4).abs() < 1e-9);
    assert_eq!(f_at(w, "csat_mean_change", i), None);
}
