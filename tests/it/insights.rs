//! Enrichment and aggregates with hand-computed answers (no model: signals are built directly).

use crate::common::support;

use arrow::array::{Array, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray};
use arrow::record_batch::RecordBatch;
use pulso::aggregate::{self, AggregateConfig, TopicStat, BRAND_DAILY, ENGAGEMENT_WEEKLY};
use pulso::enrich::{pseudonymize, EnrichConfig, Enricher, Taxonomy};
use pulso::record::{ClientType, Lang, Segment, Sentiment};
use support::*;

// ------------------------------------------------------------------------------------------------
// helpers
// ------------------------------------------------------------------------------------------------

fn enricher(key: Option<&[u8]>) -> Enricher {
    EnrichConfig {
        brands: vec!["Café Aurora".into()],
        competitors: vec!["Grão Real".into(), "Boreal".into()],
        topics_path: None,
        pseudonym_key: key.map(|k| k.to_vec()),
    }
    .build()
    .unwrap()
}

fn topics_of(e: &Enricher, ct: ClientType, text: &str) -> Vec<String> {
    let s = S::new(ct, text, Sentiment::Neutral, 0.0).enriched(e).done();
    s.enrichment.topics
}

fn str_at(b: &RecordBatch, c: &str, i: usize) -> Option<String> {
    let a = aggregate::col::<StringArray>(b, c).unwrap();
    (!a.is_null(i)).then(|| a.value(i).to_string())
}
fn int_at(b: &RecordBatch, c: &str, i: usize) -> Option<i64> {
    let a = aggregate::col::<Int64Array>(b, c).unwrap();
    (!a.is_null(i)).then(|| a.value(i))
}
fn f64_at(b: &RecordBatch, c: &str, i: usize) -> Option<f64> {
    let a = aggregate::col::<Float64Array>(b, c).unwrap();
    (!a.is_null(i)).then(|| a.value(i))
}
fn bool_at(b: &RecordBatch, c: &str, i: usize) -> Option<bool> {
    let a = aggregate::col::<BooleanArray>(b, c).unwrap();
    (!a.is_null(i)).then(|| a.value(i))
}
fn day_at(b: &RecordBatch, i: usize) -> chrono::NaiveDate {
    aggregate::days_to_date(aggregate::col::<Date32Array>(b, "day").unwrap().value(i))
}

/// The row whose string columns equal the given values.
fn row(b: &RecordBatch, key: &[(&str, &str)]) -> usize {
    (0..b.num_rows())
        .find(|&i| {
            key.iter()
                .all(|(c, v)| str_at(b, c, i).as_deref() == Some(*v))
        })
        .unwrap_or_else(|| {
            panic!(
                "no row {key:?} in {}",
                arrow::util::pretty::pretty_format_batches(std::slice::from_ref(b)).unwrap()
            )
        })
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn cfg() -> AggregateConfig {
    AggregateConfig {
        brands: vec!["Aurora".into()],
        competitors: vec!["Boreal".into()],
        min_group_size: 5,
        spike_k: 2.0,
    }
}

/// Every string value of every string column, for "never published" checks.
fn all_strings(b: &RecordBatch) -> Vec<String> {
    let mut v = Vec::new();
    for c in b.columns() {
        if let Some(s) = c.as_any().downcast_ref::<StringArray>() {
            v.extend(s.iter().flatten().map(str::to_string));
        }
    }
    v
}

// ------------------------------------------------------------------------------------------------
// enrichment
// ------------------------------------------------------------------------------------------------

#[test]
fn topics_in_three_languages_accent_and_case_insensitive() {
    let e = enricher(None);
    // pt, accents dropped / capitals, prefix term "sobrecarga*", phrase "plano de saúde".
    assert_eq!(
        topics_of(
            &e,
            ClientType::Employee,
            "SOBRECARGAS sem fim, o salario atrasou e o plano de saude piorou; meu GESTOR some."
        ),
        vec!["workload", "pay_benefits", "management"]
    );
    // es with accents written or not.
    assert_eq!(
        topics_of(
            &e,
            ClientType::Employee,
            "Nadie me dio reconocimiento y no hay capacitacion ni ascensos"
        ),
        vec!["recognition", "career_training"]
    );
    // en.
    assert_eq!(
        topics_of(
            &e,
            ClientType::Contractor,
            "The VPN is down again and nobody told us about the office move"
        ),
        vec!["tools_it", "workplace", "communication"]
    );
    // external: pt / es / en.
    assert_eq!(
        topics_of(
            &e,
            ClientType::Consumer,
            "Entrega ATRASADA e o preço é absurdo"
        ),
        vec!["price", "delivery"]
    );
    assert_eq!(
        topics_of(
            &e,
            ClientType::Consumer,
            "El pedido llegó con retraso y la calidad es mala"
        ),
        vec!["delivery", "product_quality"]
    );
    assert_eq!(
        topics_of(
            &e,
            ClientType::Business,
            "Customer service never answered and the app keeps crashing"
        ),
        vec!["customer_service", "app_website"]
    );
}

#[test]
fn topics_respect_segment_and_word_boundaries() {
    let e = enricher(None);
    // internal-only topics are not given to external signals and vice versa
    assert!(topics_of(&e, ClientType::Consumer, "salário e plano de saúde").is_empty());
    assert!(topics_of(&e, ClientType::Employee, "frete caro e entrega atrasada").is_empty());
    // whole words: "payment" is not "pay", "happy" is not "app", "desktop" is not "desk*"
    assert!(topics_of(&e, ClientType::Employee, "the payment portal").is_empty());
    assert!(topics_of(&e, ClientType::Consumer, "very happy, appreciated").is_empty());
    // a prefix only applies at the start of a word: "atras*" matches "atrasou", not "reatrasou"
    assert_eq!(
        topics_of(&e, ClientType::Consumer, "o pedido atrasou"),
        vec!["delivery"]
    );
    assert_eq!(
        topics_of(&e, ClientType::Consumer, "xatrasou"),
        Vec::<String>::new()
    );
}

#[test]
fn custom_taxonomy_file() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/insights/topics_custom.toml");
    let e = EnrichConfig {
        topics_path: Some(path),
        ..Default::default()
    }
    .build()
    .unwrap();
    assert_eq!(
        topics_of(&e, ClientType::Employee, "A cantina fechou"),
        vec!["canteen"]
    );
    assert_eq!(
        topics_of(&e, ClientType::Consumer, "Garantía rechazada"),
        vec!["warranty"]
    );
    let s = S::new(
        ClientType::Employee,
        "I will jump ship",
        Sentiment::Negative,
        -0.9,
    )
    .enriched(&e)
    .done();
    assert_eq!(s.enrichment.attrition_risk, Some(true));
    // the built-in taxonomy parses and has the documented topics
    let t = Taxonomy::builtin();
    assert_eq!(
        t.internal_topics(),
        [
            "workload",
            "pay_benefits",
            "management",
            "recognition",
            "career_training",
            "tools_it",
            "workplace",
            "communication"
        ]
    );
    assert_eq!(
        t.external_topics(),
        [
            "price",
            "delivery",
            "product_quality",
            "customer_service",
            "app_website"
        ]
    );
    // a broken taxonomy is an error, not a silent empty one
    assert!(Taxonomy::parse("[internal.x]\npt = []\n").is_err());
    assert!(Taxonomy::parse("[sales.x]\npt = [\"a\"]\n").is_err());
    assert!(EnrichConfig {
        topics_path: Some("/nonexistent/topics.toml".into()),
        ..Default::default()
    }
    .build()
    .is_err());
}

#[test]
fn attrition_risk_needs_intent_and_negative_sentiment() {
    let e = enricher(None);
    let risk = |ct, text: &str, s: Sentiment| {
        S::new(ct, text, s, 0.0)
            .enriched(&e)
            .done()
            .enrichment
            .attrition_risk
    };
    assert_eq!(
        risk(
            ClientType::Employee,
            "Estou procurando outro emprego, não aguento",
            Sentiment::Negative
        ),
        Some(true)
    );
    assert_eq!(
        risk(
            ClientType::Employee,
            "Vou PEDIR DEMISSAO amanhã",
            Sentiment::Negative
        ),
        Some(true)
    );
    assert_eq!(
        risk(
            ClientType::Employee,
            "Estoy buscando otro trabajo",
            Sentiment::Negative
        ),
        Some(true)
    );
    assert_eq!(
        risk(
            ClientType::Contractor,
            "Honestly I'm updating my résumé",
            Sentiment::Negative
        ),
        Some(true)
    );
    assert_eq!(
        risk(ClientType::Employee, "I want to quit.", Sentiment::Negative),
        Some(true)
    );
    // intent without negative sentiment: no risk
    assert_eq!(
        risk(
            ClientType::Employee,
            "Estou procurando outro emprego",
            Sentiment::Neutral
        ),
        Some(false)
    );
    assert_eq!(
        risk(ClientType::Employee, "I want to quit", Sentiment::Positive),
        Some(false)
    );
    // negative without intent: no risk; "quite" is not "quit"
    assert_eq!(
        risk(
            ClientType::Employee,
            "The canteen is quite bad",
            Sentiment::Negative
        ),
        Some(false)
    );
    // external: not applicable
    assert_eq!(
        risk(
            ClientType::Consumer,
            "I want to quit this brand",
            Sentiment::Negative
        ),
        None
    );
}

#[test]
fn engagement_and_brand_mentions_external_only() {
    let e = enricher(None);
    let s = S::ext("bom", Sentiment::Positive, 0.5)
        .likes(10)
        .replies(2)
        .enriched(&e)
        .done();
    assert_eq!(s.enrichment.engagement, Some(12));
    let s = S::ext("bom", Sentiment::Positive, 0.5)
        .likes(1)
        .shares(2)
        .replies(3)
        .enriched(&e)
        .done();
    assert_eq!(s.enrichment.engagement, Some(6));
    let s = S::ext("bom", Sentiment::Positive, 0.5).enriched(&e).done();
    assert_eq!(s.enrichment.engagement, None);
    let s = S::new(ClientType::Employee, "bom", Sentiment::Positive, 0.5)
        .likes(10)
        .enriched(&e)
        .done();
    assert_eq!(s.enrichment.engagement, None);
    assert_eq!(s.enrichment.brand_mentioned, None);
    assert_eq!(s.enrichment.competitor_mentioned, None);

    let m = |text: &str, brand: Option<&str>| {
        let mut b = S::ext(text, Sentiment::Neutral, 0.0);
        if let Some(br) = brand {
            b = b.brand(br);
        }
        let en = b.enriched(&e).done().enrichment;
        (
            en.brand_mentioned.unwrap(),
            en.competitor_mentioned.unwrap(),
        )
    };
    assert_eq!(m("adoro o CAFE AURORA!", None), (true, false));
    assert_eq!(m("o grao real é melhor", None), (false, true));
    assert_eq!(m("Café Aurora vs Boreal", None), (true, true));
    assert_eq!(m("cafeaurora e boreais", None), (false, false)); // whole words only
    assert_eq!(m("ótimo produto", Some("café aurora")), (true, false)); // brand field
    assert_eq!(m("ótimo produto", Some("Outra Marca")), (false, false));
}

#[test]
fn pseudonyms_are_keyed_stable_and_never_raw() {
    let k1 = b"0123456789abcdef-key-one";
    let k2 = b"0123456789abcdef-key-two";
    let raw = "maria.silva@empresa.com.br";
    let a = pseudonymize(k1, raw);
    assert_eq!(a, pseudonymize(k1, raw), "stable for a key");
    assert_eq!(
        a,
        pseudonymize(k1, "  Maria.Silva@Empresa.com.br "),
        "case and surrounding spaces do not matter"
    );
    assert_ne!(a, pseudonymize(k2, raw), "different across keys");
    assert_ne!(a, pseudonymize(k1, "joao@empresa.com.br"));
    assert_ne!(a, raw);
    assert!(!a.contains("maria"));
    assert_eq!(a.len(), 32);
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()));

    // Through the enricher: internal authors pseudonymised, external handles kept.
    let e = enricher(Some(k1));
    let s = S::emp(raw, "Ops", Sentiment::Neutral).enriched(&e).done();
    assert_eq!(s.enrichment.author_id.as_deref(), Some(a.as_str()));
    let s = S::ext("oi", Sentiment::Neutral, 0.0)
        .author("@cliente_feliz")
        .enriched(&e)
        .done();
    assert_eq!(s.enrichment.author_id.as_deref(), Some("@cliente_feliz"));
    assert!(e.warnings().is_empty());

    // The raw author is in no column of the published signal batch.
    let internal = S::emp(raw, "Ops", Sentiment::Neutral).enriched(&e).done();
    let batch = pulso::schema::signals_to_batch(&[internal], "m", "r");
    assert!(all_strings(&batch)
        .iter()
        .all(|v| !v.to_lowercase().contains("maria")));

    // Without a key: internal author_id is None and exactly one warning, whatever the count.
    let e = enricher(None);
    for i in 0..3 {
        let s = S::emp(&format!("user{i}"), "Ops", Sentiment::Neutral)
            .enriched(&e)
            .done();
        assert_eq!(s.enrichment.author_id, None);
    }
    let w = e.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("PULSO_PSEUDONYM_KEY") && w[0].contains('3'),
        "{w:?}"
    );

    // An empty key is refused.
    assert!(EnrichConfig {
        pseudonym_key: Some(vec![]),
        ..Default::default()
    }
    .build()
    .is_err());
}

// ------------------------------------------------------------------------------------------------
// brand_daily
// ------------------------------------------------------------------------------------------------

#[test]
fn brand_daily_net_sentiment_share_of_voice_engagement_weighted() {
    let out = tempfile::tempdir().unwrap();
    let d = "2026-11-05";
    use Sentiment::*;
    let tw = |text: &str, s, score| {
        S::ext(text, s, score)
            .at(d)
            .channel("twitter")
            .lang(Lang::Pt)
    };
    let signals = vec![
        // Aurora / twitter / pt: 3 positive, 1 negative, 1 neutral
        tw("amo a aurora", Positive, 0.75).likes(9).done(), // w = 10
        tw("aurora!!", Positive, 0.75)
            .likes(1)
            .shares(1)
            .replies(1)
            .done(), // w = 4
        tw("x", Positive, 0.75).brand("aurora").done(),     // w = 1 (brand field)
        tw("a Aurora decepcionou", Negative, -0.5).likes(0).done(), // w = 1
        tw("Aurora ok", Neutral, 0.0).replies(1).done(),    // w = 2
        // Boreal / twitter / pt: 1 positive, 2 negative (earliest mention decides: Boreal)
        tw("Boreal é melhor que Aurora", Positive, 0.5).done(),
        tw("boreal ruim", Negative, -0.5).done(),
        tw("BOREAL péssimo", Negative, -1.0).done(),
        // Aurora / instagram / en: 2 neutral
        S::ext("aurora", Neutral, 0.0)
            .at(d)
            .channel("instagram")
            .lang(Lang::En)
            .done(),
        S::ext("aurora", Neutral, 0.25)
            .at(d)
            .channel("instagram")
            .lang(Lang::En)
            .done(),
        // no brand at all
        tw("sem marca", Negative, -0.5).done(),
        // internal signals never reach brand_daily
        S::emp("a@x", "Ops", Negative).at(d).done(),
    ];
    let tables = aggregate_run(&cfg(), out.path(), day(d), &signals);
    let b = table(&tables, BRAND_DAILY);
    assert_eq!(b.num_rows(), 4);

    let r = row(
        b,
        &[
            ("brand", "Aurora"),
            ("channel", "twitter"),
            ("language", "pt"),
        ],
    );
    assert_eq!(day_at(b, r), day(d));
    assert_eq!(str_at(b, "brand_type", r).as_deref(), Some("brand"));
    assert_eq!(int_at(b, "mentions", r), Some(5));
    assert_eq!(
        (
            int_at(b, "positive", r),
            int_at(b, "neutral", r),
            int_at(b, "negative", r)
        ),
        (Some(3), Some(1), Some(1))
    );
    // (3 − 1) / (3 + 1)
    assert!(close(f64_at(b, "net_sentiment", r).unwrap(), 0.5));
    // (0.75·3 − 0.5 + 0) / 5
    assert!(close(f64_at(b, "mean_sentiment_score", r).unwrap(), 0.35));
    // engagement 9 + 3 + 0 + 0 + 1
    assert_eq!(int_at(b, "engagement", r), Some(13));
    // Σ s·(1+e) / Σ (1+e) = (0.75·10 + 0.75·4 + 0.75·1 − 0.5·1 + 0·2) / (10+4+1+1+2) = 10.75 / 18
    assert!(close(
        f64_at(b, "engagement_weighted_sentiment", r).unwrap(),
        10.75 / 18.0
    ));
    // tracked mentions that day: Aurora 5 + 2, Boreal 3 → 10
    assert!(close(f64_at(b, "share_of_voice", r).unwrap(), 0.5));
    assert_eq!(bool_at(b, "spike", r), Some(false));
    assert_eq!(int_at(b, "history_days", r), Some(0));

    let r = row(b, &[("brand", "Boreal")]);
    assert_eq!(str_at(b, "brand_type", r).as_deref(), Some("competitor"));
    assert_eq!(int_at(b, "mentions", r), Some(3));
    assert!(close(f64_at(b, "net_sentiment", r).unwrap(), -1.0 / 3.0));
    assert!(close(f64_at(b, "share_of_voice", r).unwrap(), 0.3));
    assert!(close(f64_at(b, "negative_share", r).unwrap(), 2.0 / 3.0));

    let r = row(b, &[("brand", "Aurora"), ("channel", "instagram")]);
    assert_eq!(int_at(b, "mentions", r), Some(2));
    assert_eq!(
        f64_at(b, "net_sentiment", r),
        None,
        "no positive or negative → null"
    );
    assert!(close(f64_at(b, "share_of_voice", r).unwrap(), 0.2));

    let r = row(b, &[("brand", "(none)")]);
    assert_eq!(str_at(b, "brand_type", r).as_deref(), Some("other"));
    assert_eq!(
        f64_at(b, "share_of_voice", r),
        None,
        "untracked brands have no share of voice"
    );
    assert!(close(f64_at(b, "net_sentiment", r).unwrap(), -1.0));
}

#[test]
fn null_event_time_uses_run_date() {
    let out = tempfile::tempdir().unwrap();
    let signals = vec![S::ext("Aurora", Sentiment::Positive, 1.0).done()];
    let tables = aggregate_run(&cfg(), out.path(), day("2026-11-07"), &signals);
    let b = table(&tables, BRAND_DAILY);
    assert_eq!(day_at(b, 0), day("2026-11-07"));
    assert_eq!(str_at(b, "channel", 0).as_deref(), Some("(none)"));
}

fn aurora_day(d: &str, mentions: usize, negatives: usize) -> Vec<pulso::record::Signal> {
    (0..mentions)
        .map(|i| {
            let s = if i < negatives {
                Sentiment::Negative
            } else {
                Sentiment::Positive
            };
            S::ext("Aurora", s, 0.0)
                .at(d)
                .channel("twitter")
                .lang(Lang::Pt)
                .done()
        })
        .collect()
}

const QUIET: [(&str, usize); 7] = [
    ("2026-11-01", 10),
    ("2026-11-02", 12),
    ("2026-11-03", 8),
    ("2026-11-04", 10),
    ("2026-11-05", 11),
    ("2026-11-06", 9),
    ("2026-11-07", 10),
];

#[test]
fn spike_from_earlier_runs_history() {
    let out = tempfile::tempdir().unwrap();
    // Seven nightly runs, one quiet day each (1 negative per day).
    for (d, n) in QUIET {
        let t = aggregate_run(&cfg(), out.path(), day(d), &aurora_day(d, n, 1));
        assert_eq!(
            bool_at(table(&t, BRAND_DAILY), "spike", 0),
            Some(false),
            "{d}"
        );
    }
    // Noise that must be ignored: a stale partition of the run date itself, and a later partition.
    write_table(
        out.path(),
        BRAND_DAILY,
        day("2026-11-08"),
        table(
            &aggregate_run(
                &cfg(),
                tempfile::tempdir().unwrap().path(),
                day("2026-11-08"),
                &aurora_day("2026-11-05", 500, 0),
            ),
            BRAND_DAILY,
        ),
    );
    write_table(
        out.path(),
        BRAND_DAILY,
        day("2026-11-09"),
        table(
            &aggregate_run(
                &cfg(),
                tempfile::tempdir().unwrap().path(),
                day("2026-11-09"),
                &aurora_day("2026-11-06", 500, 0),
            ),
            BRAND_DAILY,
        ),
    );

    // mean = 10, population σ = sqrt(10/7) = 1.195…, threshold = 10 + 2·1.195 = 12.39
    let loud = aggregate_run(
        &cfg(),
        out.path(),
        day("2026-11-08"),
        &aurora_day("2026-11-08", 30, 1),
    );
    let b = table(&loud, BRAND_DAILY);
    assert_eq!(int_at(b, "history_days", 0), Some(7));
    assert_eq!(bool_at(b, "spike", 0), Some(true));
    assert_eq!(
        str_at(b, "spike_reason", 0).as_deref(),
        Some("mentions 30 > 10.0 + 2×1.2")
    );

    let normal = aggregate_run(
        &cfg(),
        out.path(),
        day("2026-11-08"),
        &aurora_day("2026-11-08", 12, 1),
    );
    let b = table(&normal, BRAND_DAILY);
    assert_eq!(bool_at(b, "spike", 0), Some(false));
    assert_eq!(str_at(b, "spike_reason", 0), None);
}

#[test]
fn spike_from_earlier_days_in_the_same_run_and_negative_share() {
    let out = tempfile::tempdir().unwrap();
    let mut signals = Vec::new();
    for (d, n) in QUIET {
        signals.extend(aurora_day(d, n, 1));
    }
    signals.extend(aurora_day("2026-11-08", 30, 1));
    // 10 mentions, 8 negative: share 0.8; history shares 1/12, 1/8, 1/10, 1/11, 1/9, 1/10, 1/30:
    // mean 0.092, σ 0.027 floored at 0.05 → threshold 0.192
    signals.extend(aurora_day("2026-11-09", 10, 8));
    let t = aggregate_run(&cfg(), out.path(), day("2026-11-09"), &signals);
    let b = table(&t, BRAND_DAILY);
    assert_eq!(b.num_rows(), 9);
    let by_day = |d: &str| (0..b.num_rows()).find(|&i| day_at(b, i) == day(d)).unwrap();
    // the first days have too little history to judge
    assert_eq!(int_at(b, "history_days", by_day("2026-11-03")), Some(2));
    assert_eq!(bool_at(b, "spike", by_day("2026-11-03")), Some(false));
    assert_eq!(bool_at(b, "spike", by_day("2026-11-07")), Some(false));
    let r = by_day("2026-11-08");
    assert_eq!(bool_at(b, "spike", r), Some(true));
    assert_eq!(
        str_at(b, "spike_reason", r).as_deref(),
        Some("mentions 30 > 10.0 + 2×1.2")
    );
    let r = by_day("2026-11-09");
    assert_eq!(bool_at(b, "spike", r), Some(true));
    let reason = str_at(b, "spike_reason", r).unwrap();
    assert_eq!(reason, "negative share 0.80 > 0.09 + 2×0.05");
}

#[test]
fn no_spike_without_three_days_of_history() {
    let out = tempfile::tempdir().unwrap();
    aggregate_run(
        &cfg(),
        out.path(),
        day("2026-11-01"),
        &aurora_day("2026-11-01", 10, 0),
    );
    aggregate_run(
        &cfg(),
        out.path(),
        day("2026-11-02"),
        &aurora_day("2026-11-02", 10, 0),
    );
    let t = aggregate_run(
        &cfg(),
        out.path(),
        day("2026-11-03"),
        &aurora_day("2026-11-03", 100, 0),
    );
    let b = table(&t, BRAND_DAILY);
    assert_eq!(int_at(b, "history_days", 0), Some(2));
    assert_eq!(bool_at(b, "spike", 0), Some(false));
}

// ------------------------------------------------------------------------------------------------
// engagement_weekly
// ------------------------------------------------------------------------------------------------

#[test]
fn engagement_weekly_suppression_threshold_and_enps() {
    use Sentiment::*;
    let out = tempfile::tempdir().unwrap();
    let d = "2026-11-05"; // ISO week 2026-W45, Monday 2026-11-02
    let mut signals = Vec::new();
    // Sales: 4 distinct authors (6 responses) → suppressed
    for (i, a) in [
        "ana@corp",
        "bruno@corp",
        "carla@corp",
        "davi@corp",
        "ana@corp",
        "BRUNO@corp ",
    ]
    .iter()
    .enumerate()
    {
        signals.push(
            S::emp(a, "Sales", if i % 2 == 0 { Negative } else { Positive })
                .at(d)
                .score(9.0)
                .topics(&["workload"])
                .done(),
        );
    }
    // Ops: exactly 5 distinct authors → published
    let ops = |a: &str, s| S::emp(a, "Ops", s).at(d);
    signals.push(
        ops("o1@corp", Negative)
            .score(3.0)
            .at_micros(noon("2026-11-03"))
            .topics(&["workload"])
            .done(),
    ); // o1's older score
    signals.push(
        ops("o1@corp", Negative)
            .score(10.0)
            .topics(&["workload", "pay_benefits"])
            .attrition()
            .done(),
    ); // o1's latest
    signals.push(
        ops("o2@corp", Negative)
            .score(9.0)
            .topics(&["workload"])
            .done(),
    );
    signals.push(
        ops("o3@corp", Positive)
            .score(7.0)
            .topics(&["workload"])
            .done(),
    );
    signals.push(
        ops("o4@corp", Positive)
            .score(5.0)
            .topics(&["workload", "pay_benefits"])
            .done(),
    );
    signals.push(
        ops("o5@corp", Neutral)
            .score(8.0)
            .topics(&["workload"])
            .done(),
    );
    // a contractor group in Ops and a group without department, both small
    signals.push(
        S::new(ClientType::Contractor, "x", Negative, -0.5)
            .author("c1@corp")
            .dept("Ops")
            .at(d)
            .done(),
    );
    signals.push(
        S::new(ClientType::Employee, "x", Negative, -0.5)
            .author("n1@corp")
            .at(d)
            .done(),
    );
    // external signals never reach engagement_weekly
    signals.push(S::ext("Aurora", Negative, -1.0).at(d).done());

    // Weeks are published once complete: the run of the Monday after.
    let tables = aggregate_run(&cfg(), out.path(), day("2026-11-09"), &signals);
    let w = table(&tables, ENGAGEMENT_WEEKLY);
    assert_eq!(
        w.num_rows(),
        4,
        "{}",
        arrow::util::pretty::pretty_format_batches(std::slice::from_ref(w)).unwrap()
    );

    // 4 authors: suppressed, every metric null
    let r = row(w, &[("department", "Sales"), ("client_type", "employee")]);
    assert_eq!(str_at(w, "week", r).as_deref(), Some("2026-W45"));
    assert_eq!(bool_at(w, "suppressed", r), Some(true));
    assert_eq!(int_at(w, "min_group_size", r), Some(5));
    for c in [
        "respondents",
        "responses",
        "attrition_risk",
        "enps_respondents",
    ] {
        assert_eq!(int_at(w, c, r), None, "{c}");
    }
    for c in [
        "negative_share",
        "net_sentiment",
        "mean_sentiment_score",
        "enps",
    ] {
        assert_eq!(f64_at(w, c, r), None, "{c}");
    }
    assert_eq!(str_at(w, "top_topics", r), None);

    // exactly 5 authors: published
    let r = row(w, &[("department", "Ops"), ("client_type", "employee")]);
    assert_eq!(bool_at(w, "suppressed", r), Some(false));
    assert_eq!(
        aggregate::days_to_date(
            aggregate::col::<Date32Array>(w, "week_start")
                .unwrap()
                .value(r)
        ),
        day("2026-11-02")
    );
    assert_eq!(int_at(w, "respondents", r), Some(5));
    assert_eq!(int_at(w, "responses", r), Some(6));
    // 3 negative, 2 positive, 1 neutral of 6
    assert!(close(f64_at(w, "negative_share", r).unwrap(), 0.5));
    assert!(close(
        f64_at(w, "net_sentiment", r).unwrap(),
        (2.0 - 3.0) / 5.0
    ));
    assert!(close(
        f64_at(w, "mean_sentiment_score", r).unwrap(),
        (-0.75 * 3.0 + 0.75 * 2.0) / 6.0
    ));
    assert_eq!(int_at(w, "attrition_risk", r), Some(1));
    // latest score per respondent: 10, 9, 7, 5, 8 → promoters 2, detractors 1 → 100·(2−1)/5 = 20
    // (per response it would be 3, 10, 9, 7, 5, 8 → 0: the older 3 of o1 is not counted)
    assert_eq!(int_at(w, "enps_respondents", r), Some(5));
    assert!(close(f64_at(w, "enps", r).unwrap(), 20.0));
    // workload: 6 mentions by 5 authors, 3 negative; pay_benefits (2 authors) is below the threshold
    let topics: Vec<TopicStat> =
        serde_json::from_str(&str_at(w, "top_topics", r).unwrap()).unwrap();
    assert_eq!(
        topics,
        vec![TopicStat {
            topic: "workload".into(),
            mentions: 6,
            negative_share: 0.5
        }]
    );

    let r = row(w, &[("department", "Ops"), ("client_type", "contractor")]);
    assert_eq!(bool_at(w, "suppressed", r), Some(true));
    let r = row(w, &[("department", "(none)")]);
    assert_eq!(bool_at(w, "suppressed", r), Some(true));

    // No raw author anywhere in either table.
    for (_, b) in &tables {
        for v in all_strings(b) {
            assert!(!v.contains("@corp"), "raw author published: {v}");
        }
    }
}

#[test]
fn enps_and_net_sentiment_formulas() {
    assert_eq!(aggregate::enps(&[]), None);
    assert!(close(
        aggregate::enps(&[10.0, 9.0, 8.0, 7.0, 6.0, 0.0]).unwrap(),
        0.0
    ));
    assert!(close(
        aggregate::enps(&[10.0, 10.0, 10.0, 2.0]).unwrap(),
        50.0
    ));
    assert!(close(aggregate::enps(&[0.0, 6.0]).unwrap(), -100.0));
    assert_eq!(aggregate::net_sentiment(0, 0), None);
    assert!(close(aggregate::net_sentiment(3, 1).unwrap(), 0.5));
    assert_eq!(aggregate::iso_week_label(day("2026-01-01")), "2026-W01");
    assert_eq!(aggregate::iso_week_label(day("2027-01-01")), "2026-W53");
}

#[test]
fn authorless_responses_do_not_reach_the_threshold() {
    let out = tempfile::tempdir().unwrap();
    let signals: Vec<_> = (0..10)
        .map(|_| {
            S::new(ClientType::Employee, "anon", Sentiment::Negative, -1.0)
                .dept("Legal")
                .at("2026-11-05")
                .done()
        })
        .collect();
    let t = aggregate_run(&cfg(), out.path(), day("2026-11-09"), &signals);
    let w = table(&t, ENGAGEMENT_WEEKLY);
    assert_eq!(bool_at(w, "suppressed", 0), Some(true));
    assert_eq!(int_at(w, "responses", 0), None);
}

#[test]
fn tables_always_returned_even_when_empty() {
    let out = tempfile::tempdir().unwrap();
    let t = cfg().build().finish(out.path(), day("2026-11-05")).unwrap();
    assert_eq!(
        t.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        [
            BRAND_DAILY,
            ENGAGEMENT_WEEKLY,
            pulso::services::weekly::INTERNAL_SERVICE_WEEKLY
        ]
    );
    assert!(t.iter().all(|(_, b)| b.num_rows() == 0));
    let _ = Segment::ALL;
}
