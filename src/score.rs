//! Batching and worker replicas over the model: where the speed comes from.
//!
//! `pulso run` feeds the replicas through the continuous batch queue of [`crate::batch`] (batches
//! formed across chunk boundaries; [`Scorer`] is its backend); [`Scorer::score`] below serves the
//! per-call commands (`pulso score`, `pulso eval`).
//!
//! [`Scorer::score`] tokenizes the whole call (in parallel), sorts texts by token count and cuts
//! them into batches under a **token budget** (`batch size × longest text ≤ budget`), so short
//! texts travel in big batches and long ones in small batches with little padding. Batches go over
//! a channel to long-lived worker threads; each worker owns one replica of the model (libtorch
//! modules are `Send` but not `Sync`) and runs libtorch with `threads / replicas` intra-op threads,
//! so replicas × intra-op threads = `threads`. Results come back in input order.
//!
//! Default split: as many replicas as threads, one intra-op thread each, capped by memory and at
//! 8 (see [`default_split`] for the rule and the measurements). Override the replica count with
//! `PULSO_REPLICAS`, the batch budget with `PULSO_TOKEN_BUDGET` (padded tokens per batch) and the
//! batch size cap with `PULSO_MAX_BATCH`.
//!
//! Precision: `Auto` uses bf16 only on CPUs with AMX or AVX512-BF16 (elsewhere bf16 is emulated
//! and slower) and only if a probe set scores the same in bf16 as in fp32 (else fp32).
//! `Bf16` forces it. `Int8` runs the BERT linear layers in int8 on FBGEMM (see
//! [`crate::model::fast`]), with the default plan's guard re-scoring near ties in fp32; `Auto` picks
//! it where [`AUTO_INT8`] says so (on, since session 13), on CPUs without fast bf16, and only if the
//! probe set agrees; otherwise fp32. Softmax is always fp32.

use crate::model::fast::Int8Plan;
use crate::model::{cpu_has_fast_bf16, Encoded, ModelSpec, Network};
use crate::record::Scored;
use anyhow::{anyhow, bail, Context};
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use serde::Serialize;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    #[default]
    Auto,
    Cpu,
    Cuda,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PrecisionChoice {
    #[default]
    Auto,
    Fp32,
    Bf16,
    Int8,
}

/// Whether `precision = auto` may pick int8 on CPUs without AMX / AVX512-BF16 (after the probe).
/// Decided by measurement (label agreement and macro-F1 vs fp32, model card "Precision"): with the
/// default plan's guard (near ties re-scored in fp32) int8 keeps 99.62% of the labels of the
/// transformers fp32 reference on the bench's 5,000 texts and every xlm-t split within 0.005
/// (session 13), against 98.70% without the guard.
pub const AUTO_INT8: bool = true;

/// The precision a scorer's replicas actually run in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Precision {
    Fp32,
    Bf16,
    Int8,
}

impl std::str::FromStr for DeviceChoice {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "auto" => DeviceChoice::Auto,
            "cpu" => DeviceChoice::Cpu,
            "cuda" | "gpu" => DeviceChoice::Cuda,
            other => bail!("device {other:?} is not one of auto, cpu, cuda"),
        })
    }
}

impl std::str::FromStr for PrecisionChoice {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "auto" => PrecisionChoice::Auto,
            "fp32" | "f32" | "float32" => PrecisionChoice::Fp32,
            "bf16" | "bfloat16" => PrecisionChoice::Bf16,
            "int8" => PrecisionChoice::Int8,
            other => bail!("precision {other:?} is not one of auto, fp32, bf16, int8"),
        })
    }
}

/// What the scorer needs to be built.
#[derive(Clone, Debug)]
pub struct ScorerConfig {
    /// A local folder in Hugging Face layout, or a hub id.
    pub model: String,
    pub device: DeviceChoice,
    pub precision: PrecisionChoice,
    /// Tokens per text (longer texts are truncated and flagged); None = the model's limit.
    pub max_tokens: Option<usize>,
    /// Total CPU threads pulso may use for inference (0 = all cores).
    pub threads: usize,
}

impl Default for ScorerConfig {
    fn default() -> Self {
        ScorerConfig {
            model: crate::model::default_model()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            device: DeviceChoice::Auto,
            precision: PrecisionChoice::Auto,
            max_tokens: None,
            threads: available_threads(),
        }
    }
}

impl ScorerConfig {
    /// The config for the ad-hoc commands (`pulso score`, `pulso eval`): `model` or the default
    /// model, `threads` or all cores, `precision` as given on the command line.
    pub fn for_cli(
        model: Option<String>,
        threads: Option<usize>,
        precision: &str,
    ) -> anyhow::Result<ScorerConfig> {
        let model = match model {
            Some(m) => m,
            None => crate::model::default_model()
                .map(|p| p.display().to_string())
                .context("no --model given and the default model (models/pulso-multi) was not found; pass --model or set PULSO_MODEL")?,
        };
        Ok(ScorerConfig {
            model,
            device: DeviceChoice::Auto,
            precision: precision.parse()?,
            max_tokens: None,
            threads: threads.filter(|&t| t > 0).unwrap_or_else(available_threads),
        })
    }
}

/// Knobs that are not part of the pipeline file; [`ScorerConfig::build`] takes them from the
/// environment ([`Tuning::from_env`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tuning {
    /// Worker replicas (None = [`default_split`]); `PULSO_REPLICAS`.
    pub replicas: Option<usize>,
    /// Padded tokens per batch (None = [`DEFAULT_TOKEN_BUDGET`], GPU [`DEFAULT_GPU_TOKEN_BUDGET`]);
    /// `PULSO_TOKEN_BUDGET`.
    pub token_budget: Option<usize>,
    /// Most texts per batch (None = [`DEFAULT_MAX_BATCH`]); `PULSO_MAX_BATCH`.
    pub max_batch: Option<usize>,
}

impl Tuning {
    pub fn from_env() -> Tuning {
        let get = |k: &str| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .filter(|&v| v > 0)
        };
        Tuning {
            replicas: get("PULSO_REPLICAS"),
            token_budget: get("PULSO_TOKEN_BUDGET"),
            max_batch: get("PULSO_MAX_BATCH"),
        }
    }
}

/// Padded tokens per batch on CPU. Measured on the 2-core VM (MiniLM-L6, 2 × 1 split, texts/s):
/// budget 1024: 53.4, 2048: 53.7 / 51.6, 4096: 47.3, 8192: 45.2 (bigger batches spill the caches).
pub const DEFAULT_TOKEN_BUDGET: usize = 2048;
/// Padded tokens per batch on a GPU.
pub const DEFAULT_GPU_TOKEN_BUDGET: usize = 16384;
/// Most texts in one batch.
pub const DEFAULT_MAX_BATCH: usize = 128;

/// What was loaded, for manifests and messages.
#[derive(Clone, Debug, Serialize)]
pub struct ModelInfo {
    pub name: String,
    pub path: PathBuf,
    pub family: String,
    pub labels: Vec<String>,
    pub device: String,
    pub precision: String,
    /// Which forward pass runs: `packed` (pulso's own, no padding; the CPU default for BERT
    /// models), `fused`, `explicit` or `rust-bert` (see `forward_choice` in src/model/network.rs).
    pub forward: String,
    /// precision int8: the plan it runs ([`Int8Plan`]'s syntax), e.g. which layers stay fp32 and
    /// the guard's margin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub int8_plan: Option<String>,
    pub threads: usize,
    pub replicas: usize,
    pub max_tokens: usize,
}

/// All cores the process may use.
pub fn available_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Default split of `threads` CPU threads into worker replicas × intra-op threads.
///
/// One thread per replica scales best (no OpenMP synchronisation inside a forward pass; on a busy
/// machine a 2-thread OpenMP team is much slower than two 1-thread replicas), so the default is as
/// many replicas as threads, capped at 8 (each call is cut into ≥ 4 batches per replica; more
/// replicas only add tail idling) and by memory: replicas × weights ≤ 4 GiB. The replica count is
/// the largest divisor of `threads` under those caps, so replicas × intra-op threads = `threads`.
///
/// Measured on the 2-core AVX2 VM (MiniLM-L6, 1,000 short reviews, fp32, machine shared with two
/// training runs): 2 replicas × 1 thread 67.9 texts/s, 1 × 2 42.1 texts/s, 1 × 1 67.4 texts/s.
pub fn default_split(threads: usize, weights_bytes: u64) -> (usize, usize) {
    let threads = threads.max(1);
    let mem_cap = (4u64 << 30) / weights_bytes.max(1);
    let cap = (mem_cap.clamp(1, 8) as usize).min(threads);
    let replicas = (1..=cap)
        .rev()
        .find(|r| threads.is_multiple_of(*r))
        .unwrap_or(1);
    (replicas, threads / replicas)
}

/// Class probabilities, one row per text.
type Probs = Vec<Vec<f32>>;

struct Job {
    enc: Arc<Vec<Encoded>>,
    idx: Vec<usize>,
    /// Called with the job's text indices and their probabilities.
    reply: Box<dyn FnOnce(Vec<usize>, anyhow::Result<Probs>) + Send>,
}

/// Counters over the scorer's life (see [`Scorer::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ScoreStats {
    pub texts: u64,
    pub batches: u64,
    /// Tokens of the texts themselves (special tokens included).
    pub real_tokens: u64,
    /// Tokens the model ran on (batch size × longest text, summed over batches).
    pub padded_tokens: u64,
    pub truncated: u64,
    /// int8 with a guard: texts whose int8 top-two margin was under the guard and which were
    /// scored again in fp32 ([`Int8Plan::guard`]).
    pub rescored_fp32: u64,
}

#[derive(Default)]
struct Counters {
    texts: AtomicU64,
    batches: AtomicU64,
    real_tokens: AtomicU64,
    padded_tokens: AtomicU64,
    truncated: AtomicU64,
    /// Shared with the replicas, which add their guard's re-scored texts after each batch.
    rescored_fp32: Arc<AtomicU64>,
}

pub struct Scorer {
    info: ModelInfo,
    counters: Counters,
    spec: Arc<ModelSpec>,
    jobs: Option<Sender<Job>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    token_budget: usize,
    max_batch: usize,
}

impl ScorerConfig {
    /// Loads the model and starts the worker replicas (tuning from the environment).
    pub fn build(self) -> anyhow::Result<Scorer> {
        self.build_tuned(Tuning::from_env())
    }

    /// [`ScorerConfig::build`] with explicit tuning.
    pub fn build_tuned(self, tuning: Tuning) -> anyhow::Result<Scorer> {
        if self.model.trim().is_empty() {
            bail!("no model given: pass a model folder or hub id (or set PULSO_MODEL)");
        }
        tune_malloc();
        let spec = Arc::new(ModelSpec::open(&self.model, self.max_tokens)?);
        let device = match self.device {
            DeviceChoice::Cpu => tch::Device::Cpu,
            DeviceChoice::Cuda => {
                crate::model::cuda::ensure(true).context("device cuda")?;
                if !tch::Cuda::is_available() {
                    bail!("device cuda was asked for but no CUDA GPU is usable here (libtorch's CUDA backend is loaded and sees no device: no NVIDIA driver or GPU); use device auto or cpu");
                }
                tch::Device::Cuda(0)
            }
            DeviceChoice::Auto => match crate::model::cuda::ensure(false) {
                Ok(crate::model::cuda::Cuda::Ready { .. }) if tch::Cuda::is_available() => {
                    tch::Device::Cuda(0)
                }
                Ok(_) => tch::Device::Cpu,
                Err(e) => {
                    // auto never fails for want of a GPU: say why it is not used, score on the CPU.
                    eprintln!("pulso: warning: device auto: {e:#}; scoring on the CPU");
                    tch::Device::Cpu
                }
            },
        };
        let threads = if self.threads == 0 {
            available_threads()
        } else {
            self.threads
        };
        // The core split (replicas × intra-op threads) is decided in one place: crate::batch::Cores.
        let (replicas, intra) = if device.is_cuda() {
            (1, threads.min(2))
        } else {
            let c = crate::batch::Cores::cpu(
                threads,
                std::fs::metadata(&spec.weights)
                    .map(|m| m.len())
                    .unwrap_or(0),
                tuning.replicas,
            );
            (c.replicas, c.intra_op)
        };
        let int8_plan = Int8Plan::from_env()?;
        // `probed`: the auto probe's model, already in the precision it chose; the first replica
        // scores with it instead of loading the weights again.
        let (prec, mut probed) = match self.precision {
            PrecisionChoice::Fp32 => (Precision::Fp32, None),
            PrecisionChoice::Bf16 => (Precision::Bf16, None),
            PrecisionChoice::Int8 => {
                if device.is_cuda() {
                    bail!("precision int8 runs on the CPU (FBGEMM); with a GPU use device = \"cpu\" or precision fp32/bf16");
                }
                (Precision::Int8, None)
            }
            PrecisionChoice::Auto => {
                if device.is_cuda() {
                    (Precision::Fp32, None)
                } else if cpu_has_fast_bf16() {
                    match bf16_agrees(&spec, device, intra)? {
                        Some(net) => (Precision::Bf16, Some(net)),
                        None => (Precision::Fp32, None),
                    }
                } else if AUTO_INT8 {
                    match int8_agrees(&spec, device, intra, &int8_plan)? {
                        Some(net) => (Precision::Int8, Some(net)),
                        None => (Precision::Fp32, None),
                    }
                } else {
                    (Precision::Fp32, None)
                }
            }
        };
        let budget_default = if device.is_cuda() {
            DEFAULT_GPU_TOKEN_BUDGET
        } else {
            DEFAULT_TOKEN_BUDGET
        };
        let token_budget = tuning
            .token_budget
            .unwrap_or(budget_default)
            .max(spec.max_tokens);
        let max_batch = tuning.max_batch.unwrap_or(if device.is_cuda() {
            512
        } else {
            DEFAULT_MAX_BATCH
        });

        let rescored = Arc::new(AtomicU64::new(0));
        let (jtx, jrx) = unbounded::<Job>();
        let (ready_tx, ready_rx) = bounded::<anyhow::Result<&'static str>>(replicas);
        let mut workers = Vec::with_capacity(replicas);
        for w in 0..replicas {
            let jrx = jrx.clone();
            let ready = ready_tx.clone();
            let setup = Replica {
                spec: spec.clone(),
                device,
                prec,
                plan: int8_plan.clone(),
                intra,
                rescored: rescored.clone(),
                probed: probed.take(),
            };
            let h = std::thread::Builder::new()
                .name(format!("pulso-scorer-{w}"))
                .spawn(move || worker(setup, jrx, ready))
                .context("cannot start a scorer thread")?;
            workers.push(h);
        }
        drop(ready_tx);
        let mut scorer = Scorer {
            info: ModelInfo {
                name: spec.name.clone(),
                path: spec.dir.clone(),
                family: spec.family().as_str().to_string(),
                labels: spec.config.labels.clone(),
                device: if device.is_cuda() {
                    "cuda".into()
                } else {
                    "cpu".into()
                },
                precision: match prec {
                    Precision::Fp32 => "fp32".into(),
                    Precision::Bf16 => "bf16".into(),
                    Precision::Int8 => "int8".into(),
                },
                forward: String::new(),
                int8_plan: (prec == Precision::Int8).then(|| int8_plan.to_string()),
                threads: if device.is_cuda() {
                    intra
                } else {
                    replicas * intra
                },
                replicas,
                max_tokens: spec.max_tokens,
            },
            counters: Counters {
                rescored_fp32: rescored,
                ..Counters::default()
            },
            spec,
            jobs: Some(jtx),
            workers: Mutex::new(workers),
            token_budget,
            max_batch,
        };
        for _ in 0..replicas {
            match ready_rx.recv() {
                Ok(Ok(forward)) => scorer.info.forward = forward.to_string(),
                Ok(Err(e)) => return Err(e),
                Err(_) => bail!("a scorer thread stopped while loading the model"),
            }
        }
        Ok(scorer)
    }
}

/// Keeps glibc from handing tensor buffers back to the kernel after every operation.
///
/// libtorch allocates and frees activations of a few MB per op; with glibc's defaults those are
/// `mmap`ed / trimmed each time, and the page faults and zeroing cost ~30% of CPU inference
/// (measured: 2 × 1 split, MiniLM-L6, 42.2 / 42.9 texts/s before, 56.9 / 55.6 after). Buffers up
/// to 64 MiB now come from the heap and freed memory is kept (RSS stays at its peak, fine for a
/// batch job). Process-wide, once; `PULSO_MALLOC_TUNING=0` turns it off.
fn tune_malloc() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var("PULSO_MALLOC_TUNING")
            .map(|v| v.trim() == "0")
            .unwrap_or(false)
        {
            return;
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes allocator parameters; it is called before the workers start.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
            libc::mallopt(libc::M_TOP_PAD, 64 << 20);
        }
    });
}

/// What one replica thread loads and runs.
struct Replica {
    spec: Arc<ModelSpec>,
    device: tch::Device,
    prec: Precision,
    plan: Int8Plan,
    intra: usize,
    /// The scorer's count of texts the int8 guard re-scored in fp32.
    rescored: Arc<AtomicU64>,
    /// The auto probe's model (first replica only): already loaded in `prec`, so not loaded again.
    probed: Option<Network>,
}

fn worker(setup: Replica, jobs: Receiver<Job>, ready: Sender<anyhow::Result<&'static str>>) {
    let Replica {
        spec,
        device,
        prec,
        plan,
        intra,
        rescored,
        probed,
    } = setup;
    // libgomp's thread count is per calling thread: set it here, in the thread that runs the model.
    tch::set_num_threads(intra as i32);
    let loaded = match probed {
        Some(n) => Ok(n),
        None => spec
            .load_network(device, prec == Precision::Bf16)
            .and_then(|mut n| {
                if prec == Precision::Int8 {
                    let enc = spec.encode(&PROBE_TEXTS)?;
                    let calib: Vec<&[i64]> = enc.iter().map(|e| e.ids.as_slice()).collect();
                    n.set_int8(Some(&plan), &calib)?;
                }
                Ok(n)
            }),
    };
    let net = match loaded {
        Ok(n) => {
            let _ = ready.send(Ok(n.forward_name()));
            n
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    drop(ready);
    while let Ok(job) = jobs.recv() {
        let seqs: Vec<&[i64]> = job.idx.iter().map(|&i| job.enc[i].ids.as_slice()).collect();
        let longest = seqs.iter().map(|s| s.len()).max().unwrap_or(1);
        // A panic in the model (or the `score:batch` fault point) becomes this batch's error, so
        // whoever waits for the batch hears of it; the replica then stops.
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            crate::publish::fault::point("score:batch")
                .map_err(|e| anyhow!("the model failed on a batch: {e}"))?;
            let _cpu = crate::cputime::Span::new(crate::cputime::Stage::Model);
            let probs = net.forward_padded(&seqs, padded_len(longest, spec.max_tokens));
            rescored.fetch_add(net.take_rescored(), Ordering::Relaxed);
            probs
        }));
        match out {
            Ok(out) => (job.reply)(job.idx, out),
            Err(p) => {
                let msg = crate::batch::panic_message(&*p);
                (job.reply)(
                    job.idx,
                    Err(anyhow!(
                        "a scorer replica panicked: {msg} (nothing was published)"
                    )),
                );
                return;
            }
        }
    }
}

/// Texts used to check that bf16 scores like fp32 before `Auto` picks it.
const PROBE_TEXTS: [&str; 12] = [
    "I love this product, it works perfectly.",
    "Terrible service, I want my money back.",
    "The package arrived on Tuesday.",
    "Adorei o atendimento, muito rápido e atencioso!",
    "Péssima experiência, nunca mais compro aqui.",
    "O pedido chegou hoje.",
    "Me encantó, volveré pronto.",
    "El peor servicio que he recibido.",
    "La reunión es a las tres.",
    "Not bad at all, but the delivery was slow.",
    "Estou pensando em sair da empresa, ninguém escuta a equipe.",
    "ok",
];

/// Scores the probe texts in fp32 and bf16. When every argmax agrees and no probability moves by
/// more than 0.1, returns the probe's model, now in bf16 (what a bf16 replica loads); else None.
fn bf16_agrees(
    spec: &ModelSpec,
    device: tch::Device,
    intra: usize,
) -> anyhow::Result<Option<Network>> {
    tch::set_num_threads(intra as i32);
    let enc = spec.encode(&PROBE_TEXTS)?;
    let seqs: Vec<&[i64]> = enc.iter().map(|e| e.ids.as_slice()).collect();
    let mut net: Network = spec.load_network(device, false)?;
    let p32 = net.forward(&seqs)?;
    net.set_bf16(true);
    let p16 = net.forward(&seqs)?;
    Ok(keep_if(probs_agree(&p32, &p16, 0.1), net))
}

/// Scores the probe texts in fp32 and int8 (`plan`). When every argmax agrees and no
/// probability moves by more than 0.1, returns the probe's model, now in int8 under `plan` and
/// calibrated on the same texts a replica calibrates on; else None.
fn int8_agrees(
    spec: &ModelSpec,
    device: tch::Device,
    intra: usize,
    plan: &Int8Plan,
) -> anyhow::Result<Option<Network>> {
    tch::set_num_threads(intra as i32);
    let enc = spec.encode(&PROBE_TEXTS)?;
    let seqs: Vec<&[i64]> = enc.iter().map(|e| e.ids.as_slice()).collect();
    let mut net: Network = spec.load_network(device, false)?;
    let p32 = net.forward(&seqs)?;
    if net.set_int8(Some(plan), &seqs).is_err() {
        return Ok(keep_if(false, net));
    }
    let p8 = net.forward(&seqs)?;
    // The probe's own guard re-scores are not the run's.
    net.take_rescored();
    Ok(keep_if(probs_agree(&p32, &p8, 0.1), net))
}

/// The probe's model when it is kept; otherwise it is dropped and its memory handed back.
fn keep_if(agrees: bool, net: Network) -> Option<Network> {
    if agrees {
        return Some(net);
    }
    drop(net);
    release_freed_memory();
    None
}

/// Hands the heap's free pages back to the kernel once: a rejected probe's copy of the model
/// (hundreds of MB) is freed before the replicas load theirs, and with [`tune_malloc`]'s trim threshold glibc
/// would otherwise keep it as resident memory for the whole run.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Same argmax everywhere and every probability within `tol`.
pub fn probs_agree(a: &[Vec<f32>], b: &[Vec<f32>], tol: f32) -> bool {
    let argmax = |v: &[f32]| {
        v.iter()
            .enumerate()
            .fold(0, |best, (i, &x)| if x > v[best] { i } else { best })
    };
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            argmax(x) == argmax(y) && x.iter().zip(y).all(|(p, q)| (p - q).abs() <= tol)
        })
}

/// Cuts texts (given by token count) into batches under a token budget: sorted longest first,
/// each batch holds as many texts as fit `count × longest ≤ budget` (and `≤ max_batch`).
/// Returns indices into `lens`; every index appears exactly once.
pub fn plan_batches(lens: &[usize], token_budget: usize, max_batch: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lens.len()).collect();
    order.sort_by(|&a, &b| lens[b].cmp(&lens[a]).then(a.cmp(&b)));
    let mut batches = Vec::new();
    let mut cur: Vec<usize> = Vec::new();
    let mut cur_max = 0usize;
    for i in order {
        let l = lens[i].max(1);
        if !cur.is_empty()
            && ((cur.len() + 1) * cur_max.max(l) > token_budget || cur.len() >= max_batch)
        {
            batches.push(std::mem::take(&mut cur));
            cur_max = 0;
        }
        cur_max = cur_max.max(l);
        cur.push(i);
    }
    if !cur.is_empty() {
        batches.push(cur);
    }
    batches
}

/// Padded lengths are multiples of this many tokens (capped at the model's limit).
pub const PAD_BUCKET: usize = 16;

/// The padded length of a text of `len` tokens: the next multiple of [`PAD_BUCKET`], at most `cap`.
pub fn padded_len(len: usize, cap: usize) -> usize {
    (len.max(1).div_ceil(PAD_BUCKET) * PAD_BUCKET)
        .min(cap.max(len))
        .max(len)
}

/// [`plan_batches`] within groups of one padded length ([`padded_len`]): every batch pads its
/// texts to their common bucket, so a text's padded shape does not depend on the other texts of
/// the call, and a shard of a run scores each text like the whole run would ([`crate::shard`]).
pub fn plan_bucketed_batches(
    lens: &[usize],
    cap: usize,
    token_budget: usize,
    max_batch: usize,
) -> Vec<Vec<usize>> {
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (i, &l) in lens.iter().enumerate() {
        groups.entry(padded_len(l, cap)).or_default().push(i);
    }
    let mut out = Vec::new();
    for (bucket, idx) in groups.into_iter().rev() {
        let blens = vec![bucket; idx.len()];
        for b in plan_batches(&blens, token_budget, max_batch) {
            out.push(b.into_iter().map(|j| idx[j]).collect());
        }
    }
    out
}

impl Scorer {
    /// Scores texts; output is in input order.
    pub fn score(&self, texts: &[&str]) -> anyhow::Result<Vec<Scored>> {
        let (probs, enc) = self.run(texts)?;
        Ok(probs
            .iter()
            .zip(enc.iter())
            .map(|(p, e)| self.spec.labels.to_scored(p, e.truncated))
            .collect())
    }

    /// Raw class probabilities (id2label order) and the truncation flag of each text, in input order.
    pub fn probabilities(&self, texts: &[&str]) -> anyhow::Result<Vec<(Vec<f32>, bool)>> {
        let (probs, enc) = self.run(texts)?;
        Ok(probs
            .into_iter()
            .zip(enc.iter())
            .map(|(p, e)| (p, e.truncated))
            .collect())
    }

    fn run(&self, texts: &[&str]) -> anyhow::Result<(Probs, Arc<Vec<Encoded>>)> {
        if texts.is_empty() {
            return Ok((Vec::new(), Arc::new(Vec::new())));
        }
        let enc = Arc::new(self.spec.encode(texts)?);
        let lens: Vec<usize> = enc.iter().map(|e| e.ids.len()).collect();
        // Keep at least ~4 batches per replica so no worker idles at the end of a call.
        let replicas = self.info.replicas.max(1);
        let per_batch = lens
            .len()
            .div_ceil(4 * replicas)
            .clamp(8, self.max_batch.max(8));
        let batches = plan_bucketed_batches(
            &lens,
            self.info.max_tokens,
            self.token_budget,
            per_batch.min(self.max_batch.max(1)),
        );
        let c = &self.counters;
        c.texts.fetch_add(lens.len() as u64, Ordering::Relaxed);
        c.batches.fetch_add(batches.len() as u64, Ordering::Relaxed);
        c.real_tokens
            .fetch_add(lens.iter().sum::<usize>() as u64, Ordering::Relaxed);
        let padded: usize = batches
            .iter()
            .map(|b| {
                b.len()
                    * padded_len(
                        b.iter().map(|&i| lens[i]).max().unwrap_or(0),
                        self.info.max_tokens,
                    )
            })
            .sum();
        c.padded_tokens.fetch_add(padded as u64, Ordering::Relaxed);
        c.truncated.fetch_add(
            enc.iter().filter(|e| e.truncated).count() as u64,
            Ordering::Relaxed,
        );
        let jobs = self
            .jobs
            .as_ref()
            .ok_or_else(|| anyhow!("the scorer is shut down"))?;
        let (rtx, rrx) = unbounded();
        let n_batches = batches.len();
        for idx in batches {
            let rtx = rtx.clone();
            jobs.send(Job {
                enc: enc.clone(),
                idx,
                reply: Box::new(move |idx, res| {
                    let _ = rtx.send((idx, res));
                }),
            })
            .map_err(|_| anyhow!("the scorer threads have stopped"))?;
        }
        drop(rtx);
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for _ in 0..n_batches {
            let (idx, res) = rrx
                .recv()
                .map_err(|_| anyhow!("a scorer thread stopped unexpectedly"))?;
            let probs = res?;
            for (i, p) in idx.into_iter().zip(probs) {
                out[i] = p;
            }
        }
        Ok((out, enc))
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The manifest's `model` member: [`ModelInfo`], and for int8 how many texts the guard
    /// re-scored in fp32 so far (`int8_rescored_fp32`).
    pub fn manifest_model(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.info).unwrap_or_default();
        if self.info.int8_plan.is_some() {
            v["int8_rescored_fp32"] = self.stats().rescored_fp32.into();
        }
        v
    }

    /// Texts, batches and tokens scored so far (padding overhead = padded / real tokens).
    pub fn stats(&self) -> ScoreStats {
        let c = &self.counters;
        ScoreStats {
            texts: c.texts.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            real_tokens: c.real_tokens.load(Ordering::Relaxed),
            padded_tokens: c.padded_tokens.load(Ordering::Relaxed),
            truncated: c.truncated.load(Ordering::Relaxed),
            rescored_fp32: c.rescored_fp32.load(Ordering::Relaxed),
        }
    }

    /// The model's config, tokenizer and labels.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }
}

/// The replicas as the batch queue's backend ([`crate::batch`]): one batch per free replica.
impl crate::batch::Backend for Scorer {
    fn replicas(&self) -> usize {
        self.info.replicas.max(1)
    }

    fn limits(&self) -> crate::batch::Limits {
        crate::batch::Limits {
            token_budget: self.token_budget,
            max_batch: self.max_batch.max(1),
            max_tokens: self.info.max_tokens,
        }
    }

    fn submit(
        &self,
        batch: Vec<Encoded>,
        tag: u64,
        reply: Sender<crate::batch::Reply>,
    ) -> anyhow::Result<()> {
        let c = &self.counters;
        let n = batch.len();
        let longest = batch.iter().map(|e| e.ids.len()).max().unwrap_or(0);
        c.texts.fetch_add(n as u64, Ordering::Relaxed);
        c.batches.fetch_add(1, Ordering::Relaxed);
        c.real_tokens.fetch_add(
            batch.iter().map(|e| e.ids.len() as u64).sum(),
            Ordering::Relaxed,
        );
        c.padded_tokens.fetch_add(
            (n * padded_len(longest, self.info.max_tokens)) as u64,
            Ordering::Relaxed,
        );
        c.truncated.fetch_add(
            batch.iter().filter(|e| e.truncated).count() as u64,
            Ordering::Relaxed,
        );
        let jobs = self
            .jobs
            .as_ref()
            .ok_or_else(|| anyhow!("the scorer is shut down"))?;
        jobs.send(Job {
            enc: Arc::new(batch),
            idx: (0..n).collect(),
            reply: Box::new(move |_, res| {
                let _ = reply.send((tag, res));
            }),
        })
        .map_err(|_| anyhow!("the scorer threads have stopped"))
    }
}

impl Drop for Scorer {
    fn drop(&mut self) {
        self.jobs.take();
        if let Ok(mut w) = self.workers.lock() {
            for h in w.drain(..) {
                let _ = h.join();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// `pulso score`: texts in, one JSON object per text out.

/// Options of [`score_stream_with`].
#[derive(Clone, Debug)]
pub struct StreamOptions {
    /// Lines per chunk fed to the batch queue (memory stays flat whatever the input size: at most
    /// [`crate::batch::WINDOW`] chunks wait in the queue).
    pub chunk: usize,
    /// Repeat the text in the output.
    pub include_text: bool,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            chunk: 2048,
            include_text: true,
        }
    }
}

/// One input line: plain text, or a JSON object with a string `text` (and optional `id`).
#[derive(Debug, PartialEq)]
pub struct StreamItem {
    pub id: Option<serde_json::Value>,
    pub text: String,
}

/// Parses one input line (see [`StreamItem`]). Blank lines give None.
pub fn parse_line(line: &str) -> Option<StreamItem> {
    parse_line_checked(line).unwrap_or_else(|_| {
        Some(StreamItem {
            id: None,
            text: line.trim_end_matches(['\n', '\r']).to_string(),
        })
    })
}

/// [`parse_line`] that refuses a JSON object without a string `text` (scoring its raw JSON would
/// be silently wrong): Err says what the line lacks.
pub fn parse_line_checked(line: &str) -> Result<Option<StreamItem>, String> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.trim().is_empty() {
        return Ok(None);
    }
    if line.trim_start().starts_with('{') {
        if let Ok(serde_json::Value::Object(mut m)) =
            serde_json::from_str::<serde_json::Value>(line)
        {
            return match m.remove("text") {
                Some(serde_json::Value::String(t)) => Ok(Some(StreamItem {
                    id: m.remove("id"),
                    text: t,
                })),
                other => {
                    let keys: Vec<&str> = m.keys().map(String::as_str).take(20).collect();
                    Err(format!(
                        "the line is a JSON object {}; give it a string \"text\" field (it has: {}), or pass plain text, one per line",
                        if other.is_some() { "whose \"text\" is not a string" } else { "without a \"text\" field" },
                        keys.join(", ")
                    ))
                }
            };
        }
    }
    Ok(Some(StreamItem {
        id: None,
        text: line.to_string(),
    }))
}

#[derive(Serialize)]
struct StreamOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    sentiment: crate::record::Sentiment,
    p_negative: f32,
    p_neutral: f32,
    p_positive: f32,
    sentiment_score: f32,
    language: crate::record::Lang,
    truncated: bool,
}

/// `pulso score`: reads one text per line (or JSON Lines with `text`, carrying `id` through),
/// writes one JSON object per text. Returns how many texts were scored. A closed stdout (broken
/// pipe, e.g. `| head`) ends the stream quietly.
pub fn score_stream(
    scorer: &Arc<Scorer>,
    input: Box<dyn BufRead + Send>,
    out: &mut dyn Write,
) -> anyhow::Result<usize> {
    score_stream_with(scorer, input, out, &StreamOptions::default())
}

/// A chunk of parsed input lines, and the number of the last line read.
type LineChunk = Result<(Vec<StreamItem>, usize), anyhow::Error>;

/// [`score_stream`] with options.
///
/// The same stream as `pulso run` ([`crate::batch`]): a reader thread parses lines into chunks,
/// this thread tokenizes them and feeds the one batch queue, which forms batches across chunk
/// boundaries for the replicas; chunks come back scored in input order and are written at once.
/// Reading, tokenizing and writing overlap the model, and a text scores exactly as in `pulso run`.
pub fn score_stream_with(
    scorer: &Arc<Scorer>,
    input: Box<dyn BufRead + Send>,
    out: &mut dyn Write,
    opts: &StreamOptions,
) -> anyhow::Result<usize> {
    let chunk = opts.chunk.max(1);
    let (ltx, lrx) = bounded::<LineChunk>(1);
    std::thread::Builder::new()
        .name("pulso-score-reader".into())
        .spawn(move || read_chunks(input, chunk, ltx))
        .context("cannot start the input reader thread")?;
    let mut stream = crate::batch::Stream::start(scorer.clone(), |_| {})
        .context("cannot start the scoring stage")?;
    // Chunks in the stream and not yet written: their items and truncation flags.
    let mut admitted: std::collections::VecDeque<(Vec<StreamItem>, Vec<bool>, usize)> =
        Default::default();
    let mut ready: Option<crate::batch::ChunkIn> = None;
    let mut reader_done = false;
    let mut bad_input: Option<anyhow::Error> = None;
    let mut total = 0usize;
    loop {
        if reader_done && ready.is_none() {
            stream.close_input();
            if admitted.is_empty() {
                break;
            }
        }
        let mut sel = crossbeam_channel::Select::new();
        let read_op = (ready.is_none() && !reader_done).then(|| sel.recv(&lrx));
        let send_op = match (&ready, stream.input()) {
            (Some(_), Some(tx)) => Some(sel.send(tx)),
            _ => None,
        };
        let done_op = (!admitted.is_empty()).then(|| sel.recv(stream.output()));
        let op = sel.select();
        let idx = Some(op.index());
        if idx == read_op {
            let (items, line_no) = match op.recv(&lrx) {
                Ok(Ok(chunk)) => chunk,
                Ok(Err(e)) => {
                    // A bad line: the chunks before it are still written, then the error.
                    bad_input = Some(e);
                    reader_done = true;
                    continue;
                }
                Err(_) => {
                    reader_done = true;
                    continue;
                }
            };
            let texts: Vec<&str> = items.iter().map(|i| i.text.as_str()).collect();
            let encoded = scorer
                .spec()
                .encode(&texts)
                .with_context(|| format!("tokenizing input up to line {line_no}"))?;
            let truncated = encoded.iter().map(|e| e.truncated).collect();
            admitted.push_back((items, truncated, line_no));
            ready = Some(crate::batch::ChunkIn::all(encoded));
        } else if idx == send_op {
            let tx = stream
                .input()
                .expect("the input is open while a chunk waits");
            if op
                .send(tx, ready.take().expect("a chunk is ready"))
                .is_err()
            {
                // The queue stopped: its error is on the output, read next time round.
                stream.close_input();
                reader_done = true;
            }
        } else {
            debug_assert_eq!(idx, done_op);
            let (items, truncated, line_no) = admitted.pop_front().expect("a chunk was admitted");
            let probs = match op.recv(stream.output()) {
                Ok(Ok((_, probs))) => probs,
                Ok(Err(e)) => return Err(e.context(format!("scoring input up to line {line_no}"))),
                Err(_) => {
                    return Err(stream
                        .finish()
                        .err()
                        .unwrap_or_else(|| anyhow!("the batch queue stopped early"))
                        .context(format!("scoring input up to line {line_no}")))
                }
            };
            let mut text_out = Vec::with_capacity(items.len() * 160);
            for ((it, p), &t) in items.iter().zip(&probs).zip(&truncated) {
                let s = scorer.spec().labels.to_scored(p, t);
                let rec = StreamOut {
                    id: it.id.as_ref(),
                    text: opts.include_text.then_some(it.text.as_str()),
                    sentiment: s.sentiment,
                    p_negative: s.p_negative,
                    p_neutral: s.p_neutral,
                    p_positive: s.p_positive,
                    sentiment_score: s.sentiment_score,
                    language: crate::lang::detect(&it.text),
                    truncated: s.truncated,
                };
                serde_json::to_writer(&mut text_out, &rec)?;
                text_out.push(b'\n');
            }
            match out.write_all(&text_out).and_then(|_| out.flush()) {
                Ok(()) => total += items.len(),
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(total),
                Err(e) => return Err(e).context("writing output"),
            }
        }
    }
    stream.finish()?;
    match bad_input {
        Some(e) => Err(e),
        None => Ok(total),
    }
}

/// The reader thread of [`score_stream_with`]: parsed lines in chunks of `chunk`, then the end of
/// the channel; a bad line ends it with an error naming the line.
fn read_chunks(mut input: Box<dyn BufRead + Send>, chunk: usize, tx: Sender<LineChunk>) {
    let mut line_no = 0usize;
    let mut buf = Vec::new();
    loop {
        let mut items = Vec::with_capacity(chunk);
        let mut eof = false;
        while items.len() < chunk {
            buf.clear();
            match input.read_until(b'\n', &mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.send(Err(anyhow::Error::new(e).context("reading input")));
                    return;
                }
            }
            line_no += 1;
            let line = String::from_utf8_lossy(&buf);
            match parse_line_checked(&line) {
                Ok(Some(it)) => items.push(it),
                Ok(None) => {}
                Err(e) => {
                    let _ = tx.send(Err(anyhow!("input line {line_no}: {e}")));
                    return;
                }
            }
        }
        if !items.is_empty() && tx.send(Ok((items, line_no))).is_err() {
            return;
        }
        if eof {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_budget_and_cover_all() {
        let lens = vec![5, 60, 7, 7, 30, 64, 3, 12, 12, 12];
        let b = plan_batches(&lens, 128, 4);
        let mut seen: Vec<usize> = b.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..lens.len()).collect::<Vec<_>>());
        for batch in &b {
            let max = batch.iter().map(|&i| lens[i]).max().unwrap();
            assert!(batch.len() * max <= 128 || batch.len() == 1, "{batch:?}");
            assert!(batch.len() <= 4);
        }
        // Longest first: 64 and 60 together (2 x 64 = 128).
        assert_eq!(b[0], vec![5, 1]);
    }

    #[test]
    fn bucketed_batches_pad_each_text_to_its_own_bucket() {
        let lens = vec![5, 60, 7, 17, 30, 64, 3, 12, 16, 33, 512, 500];
        let b = plan_bucketed_batches(&lens, 512, 256, 4);
        let mut seen: Vec<usize> = b.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..lens.len()).collect::<Vec<_>>());
        for batch in &b {
            let buckets: Vec<usize> = batch.iter().map(|&i| padded_len(lens[i], 512)).collect();
            assert!(buckets.iter().all(|x| *x == buckets[0]), "{batch:?}");
            let longest = batch.iter().map(|&i| lens[i]).max().unwrap();
            // What the worker pads to is the text's own bucket, whatever its batch-mates.
            assert_eq!(padded_len(longest, 512), buckets[0]);
            assert!(batch.len() <= 4);
        }
        assert_eq!(padded_len(3, 512), 16);
        assert_eq!(padded_len(16, 512), 16);
        assert_eq!(padded_len(17, 512), 32);
        assert_eq!(padded_len(500, 512), 512);
        assert_eq!(padded_len(510, 510), 510);
    }

    #[test]
    fn oversize_text_gets_its_own_batch() {
        let b = plan_batches(&[500, 2, 2], 100, 64);
        assert_eq!(b, vec![vec![0], vec![1, 2]]);
        assert!(plan_batches(&[], 100, 64).is_empty());
    }

    #[test]
    fn parse_lines() {
        assert_eq!(
            parse_line("hello world\r\n"),
            Some(StreamItem {
                id: None,
                text: "hello world".into()
            })
        );
        assert_eq!(parse_line("   \n"), None);
        let j = parse_line(r#"{"id": 7, "text": "ótimo"}"#).unwrap();
        assert_eq!(j.text, "ótimo");
        assert_eq!(j.id, Some(serde_json::json!(7)));
        // An object without a string `text` is an error for the stream (naming what it has)...
        let e = parse_line_checked(r#"{"body": "x"}"#).unwrap_err();
        assert!(
            e.contains("without a \"text\"") && e.contains("body"),
            "{e}"
        );
        // ...and plain text for the lenient helper.
        let p = parse_line(r#"{"body": "x"}"#).unwrap();
        assert_eq!(p.text, r#"{"body": "x"}"#);
        assert_eq!(parse_line("{not json").unwrap().text, "{not json");
    }

    #[test]
    fn default_splits() {
        assert_eq!(default_split(2, 90 << 20), (2, 1));
        assert_eq!(default_split(16, 90 << 20), (8, 2));
        assert_eq!(default_split(6, 90 << 20), (6, 1));
        assert_eq!(default_split(12, 90 << 20), (6, 2));
        // 1.1 GB (XLM-R base): at most 3 replicas in 4 GiB.
        assert_eq!(default_split(16, 1_100 << 20), (2, 8));
        assert_eq!(default_split(1, 90 << 20), (1, 1));
        assert_eq!(default_split(0, 0), (1, 1));
    }

    #[test]
    fn agreement() {
        let a = vec![vec![0.7, 0.3], vec![0.2, 0.8]];
        assert!(probs_agree(&a, &[vec![0.65, 0.35], vec![0.25, 0.75]], 0.1));
        assert!(!probs_agree(&a, &[vec![0.45, 0.55], vec![0.2, 0.8]], 0.5));
    }
}
