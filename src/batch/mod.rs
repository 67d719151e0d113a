//! Continuous batching: one queue forms model batches under a token budget across chunk boundaries.
//!
//! `pulso run` reads records in chunks ([`crate::pipeline::CHUNK`]); before this module the scorer
//! finished every chunk before it saw the next, so replicas idled on each chunk's last, part-full
//! batches and the scoring bar moved once per chunk. Now (in the style of
//! text-embeddings-inference's queue) the stream is
//!
//! ```text
//! reader ─chunks─▶ route + tokenize ─▶ BatchQueue ─batches─▶ replicas ─▶ (chunks, in order) ─▶ enrich ─▶ writer
//! ```
//!
//! * [`BatchQueue`] keeps the tokenized texts of up to [`WINDOW`] chunks, grouped by padded length
//!   ([`crate::score::padded_len`], buckets of 16 tokens). A replica that is free gets the next
//!   batch: texts of one bucket only (so a text is padded to its own bucket whoever shares its batch:
//!   probabilities do not depend on the other texts, and shards score like whole runs), oldest
//!   text first, as many as fit `count × bucket ≤ token budget` (and `≤ max batch`). Batches mix
//!   chunks freely; a part-full batch is only sent when nothing fuller exists and the queue cannot
//!   take more input (window full, or end of input), so batches stay full across chunk boundaries.
//! * [`Stream`] runs the queue on its own thread, keeps exactly one batch in flight per replica
//!   ([`Backend`], implemented by [`crate::score::Scorer`]; libtorch models are `Send`, not `Sync`,
//!   so each replica is a thread owning its model), and hands each chunk's probabilities back in
//!   input order once all its texts are scored. Progress moves per batch.
//! * Memory is bounded: at most [`WINDOW`] chunks inside the queue and [`WINDOW`] finished chunks
//!   waiting for the enrich stage (bounded channels everywhere).
//! * Failures: an error or a panic in a replica or in the queue thread ends the stream with an
//!   error (`pulso run` then fails with exit 2 and publishes nothing); nothing waits forever.
//!
//! [`Cores`] is the one place that divides the CPU threads between model replicas, libtorch's
//! intra-op threads, the rayon pool (tokenization) and the I/O threads.

use crate::model::Encoded;
use crossbeam_channel::{bounded, Receiver, Select, Sender};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Chunks the queue holds at once (texts not yet scored), and finished chunks waiting for the
/// enrich stage.
pub const WINDOW: usize = 3;

/// Class probabilities, one row per text.
pub type Probs = Vec<Vec<f32>>;

/// A batch's result: its tag and the probabilities of its texts, in batch order.
pub type Reply = (u64, anyhow::Result<Probs>);

/// Batch shape limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Padded tokens per batch (`count × bucket`).
    pub token_budget: usize,
    /// Most texts per batch.
    pub max_batch: usize,
    /// The model's token limit (the largest padded length).
    pub max_tokens: usize,
}

impl Limits {
    /// Texts of padded length `bucket` that fit one batch.
    pub fn per_batch(&self, bucket: usize) -> usize {
        (self.token_budget / bucket.max(1)).clamp(1, self.max_batch.max(1))
    }
}

/// Where batches run: the model replicas, or a test double.
pub trait Backend: Sync {
    /// Batches that can run at once (one per replica).
    fn replicas(&self) -> usize;
    /// Batch shape limits.
    fn limits(&self) -> Limits;
    /// Starts `batch` (texts of one padded length) on a free replica; the probabilities come back
    /// on `reply` with `tag`. An error here means the replicas are gone.
    fn submit(&self, batch: Vec<Encoded>, tag: u64, reply: Sender<Reply>) -> anyhow::Result<()>;
}

/// Where one text of a batch came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot {
    pub chunk: u64,
    pub pos: u32,
}

/// A batch formed by [`BatchQueue::next`]: texts of one padded length.
#[derive(Debug)]
pub struct Batch {
    pub bucket: usize,
    pub slots: Vec<Slot>,
    pub texts: Vec<Encoded>,
}

/// Tokenized texts waiting for the model, grouped by padded length (see the module docs).
#[derive(Debug)]
pub struct BatchQueue {
    limits: Limits,
    buckets: BTreeMap<usize, VecDeque<(Slot, Encoded)>>,
    len: usize,
}

impl BatchQueue {
    pub fn new(limits: Limits) -> BatchQueue {
        BatchQueue {
            limits,
            buckets: BTreeMap::new(),
            len: 0,
        }
    }

    /// Texts waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds the texts of chunk `chunk` (chunks must come in increasing order).
    pub fn push(&mut self, chunk: u64, texts: Vec<Encoded>) {
        for (pos, e) in texts.into_iter().enumerate() {
            let b = crate::score::padded_len(e.ids.len(), self.limits.max_tokens);
            self.buckets.entry(b).or_default().push_back((
                Slot {
                    chunk,
                    pos: pos as u32,
                },
                e,
            ));
            self.len += 1;
        }
    }

    /// The next batch: the bucket of the oldest waiting text if it fills a batch, else the
    /// fullest-by-age bucket that fills one, else (only with `flush`) the oldest text's bucket
    /// part-full. `cap` limits the batch's text count further (tail balancing at end of input).
    pub fn next(&mut self, flush: bool, cap: usize) -> Option<Batch> {
        let cap = cap.max(1);
        let want = |b: usize| self.limits.per_batch(b).min(cap);
        // Buckets by the age of their oldest text.
        let mut by_age: Vec<(Slot, usize, bool)> = self
            .buckets
            .iter()
            .filter_map(|(&b, q)| q.front().map(|(s, _)| (*s, b, q.len() >= want(b))))
            .collect();
        by_age.sort();
        let pick = match by_age.first() {
            None => return None,
            Some(&(_, b, true)) => b,
            Some(&(_, oldest, false)) => match by_age.iter().find(|x| x.2) {
                Some(&(_, b, _)) => b,
                None if flush => oldest,
                None => return None,
            },
        };
        let n = want(pick);
        let q = self.buckets.get_mut(&pick).expect("picked bucket exists");
        let take = n.min(q.len());
        let (slots, texts): (Vec<Slot>, Vec<Encoded>) = q.drain(..take).unzip();
        if q.is_empty() {
            self.buckets.remove(&pick);
        }
        self.len -= take;
        Some(Batch {
            bucket: pick,
            slots,
            texts,
        })
    }
}

/// How `threads` CPU threads are divided: `replicas × intra_op` for the model (libtorch's
/// intra-op threads are capped per replica thread), `rayon` for tokenization; the reader, writer
/// and enrich threads mostly wait on I/O or on the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Cores {
    pub threads: usize,
    pub replicas: usize,
    pub intra_op: usize,
    pub rayon: usize,
}

impl Cores {
    /// The split for `threads` on the CPU. The model is ≥ 90% of the CPU time, so it gets every
    /// thread ([`crate::score::default_split`], or `replicas` when given); tokenization gets a
    /// quarter of them (at least one) on rayon, so that tokenizing the next chunk while the
    /// replicas run oversubscribes the cores by at most that quarter.
    pub fn cpu(threads: usize, weights_bytes: u64, replicas: Option<usize>) -> Cores {
        let threads = threads.max(1);
        let (replicas, intra_op) = match replicas {
            Some(r) => {
                let r = r.clamp(1, threads);
                (r, (threads / r).max(1))
            }
            None => crate::score::default_split(threads, weights_bytes),
        };
        Cores {
            threads,
            replicas,
            intra_op,
            rayon: threads.div_ceil(4),
        }
    }
}

/// A chunk's tokenized texts; the first `counted` count for progress (whole records; the
/// sentences scored for aspects come after them).
#[derive(Debug, Default)]
pub struct ChunkIn {
    pub texts: Vec<Encoded>,
    pub counted: usize,
}

impl ChunkIn {
    /// Every text counts.
    pub fn all(texts: Vec<Encoded>) -> ChunkIn {
        let counted = texts.len();
        ChunkIn { texts, counted }
    }
}

/// Completed chunk: its sequence number and its texts' probabilities in input order.
pub type Done = anyhow::Result<(u64, Probs)>;

/// The batching stage of `pulso run` (see the module docs). Send chunks with [`Stream::input`]
/// (a bounded channel: sending blocks while the queue holds [`WINDOW`] chunks), receive them
/// scored, in order, from [`Stream::output`]; drop the input to say the input is over, then
/// [`Stream::finish`].
pub struct Stream {
    input: Option<Sender<ChunkIn>>,
    output: Receiver<Done>,
    abort: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Stream {
    /// Starts the queue thread over `backend`; `progress(n)` is called after each batch with the
    /// number of its texts that count ([`ChunkIn::counted`]).
    pub fn start<B, P>(backend: Arc<B>, progress: P) -> anyhow::Result<Stream>
    where
        B: Backend + Send + 'static,
        P: Fn(u64) + Send + 'static,
    {
        let (itx, irx) = bounded::<ChunkIn>(0);
        let (otx, orx) = bounded::<Done>(WINDOW);
        let abort = Arc::new(AtomicBool::new(false));
        let stop = abort.clone();
        let handle = std::thread::Builder::new()
            .name("pulso-batch-queue".into())
            .spawn(move || {
                if let Err(e) = queue_loop(&*backend, irx, &otx, &progress, &stop) {
                    let _ = otx.send(Err(e));
                }
            })
            .map_err(|e| anyhow::anyhow!("cannot start the batch queue thread: {e}"))?;
        Ok(Stream {
            input: Some(itx),
            output: orx,
            abort,
            handle: Some(handle),
        })
    }

    /// Where chunks go in (None after [`Stream::close_input`]).
    pub fn input(&self) -> Option<&Sender<ChunkIn>> {
        self.input.as_ref()
    }

    /// Says the input is over: the queue flushes what it holds.
    pub fn close_input(&mut self) {
        self.input.take();
    }

    /// Where scored chunks come out, in input order.
    pub fn output(&self) -> &Receiver<Done> {
        &self.output
    }

    /// Stops the queue thread (what it still holds is dropped: call this once every chunk came
    /// back, or to give up after a failure) and joins it: an error if it panicked.
    pub fn finish(mut self) -> anyhow::Result<()> {
        match self.stop() {
            Some(Err(p)) => Err(anyhow::anyhow!(
                "the batch queue thread panicked: {}",
                panic_message(&*p)
            )),
            _ => Ok(()),
        }
    }

    fn stop(&mut self) -> Option<std::thread::Result<()>> {
        self.abort.store(true, Ordering::SeqCst);
        self.input.take();
        // Disconnect the output, so a queue thread blocked handing back a chunk wakes up.
        self.output = crossbeam_channel::never();
        self.handle.take().map(|h| h.join())
    }

    /// Scores `chunks` through a stream over `backend` and returns them in order (a helper for
    /// callers without their own select loop, and for tests).
    pub fn score_all<B>(backend: Arc<B>, chunks: Vec<Vec<Encoded>>) -> anyhow::Result<Vec<Probs>>
    where
        B: Backend + Send + 'static,
    {
        let mut s = Stream::start(backend, |_| {})?;
        let n = chunks.len();
        let mut out = Vec::with_capacity(n);
        let mut pending = chunks.into_iter().map(ChunkIn::all);
        let mut next = pending.next();
        while out.len() < n {
            let mut sel = Select::new();
            let send_op = match (&next, s.input()) {
                (Some(_), Some(tx)) => Some(sel.send(tx)),
                _ => None,
            };
            let recv_op = sel.recv(s.output());
            let op = sel.select();
            if Some(op.index()) == send_op {
                let tx = s.input().expect("input open while sending");
                if op.send(tx, next.take().expect("a chunk to send")).is_err() {
                    // The queue stopped: its error (or panic) is on the output, read next time
                    // round (as `pulso run` and `pulso score` do).
                    s.close_input();
                    continue;
                }
                next = pending.next();
                if next.is_none() {
                    s.close_input();
                }
            } else {
                debug_assert_eq!(op.index(), recv_op);
                match op.recv(s.output()) {
                    Ok(Ok((_, p))) => out.push(p),
                    Ok(Err(e)) => {
                        let _ = s.finish();
                        return Err(e);
                    }
                    Err(_) => {
                        s.finish()?;
                        anyhow::bail!("the batch queue stopped before the end of input");
                    }
                }
            }
            if next.is_none() {
                s.close_input();
            }
        }
        s.finish()?;
        Ok(out)
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

struct ChunkState {
    probs: Probs,
    left: usize,
    counted: usize,
}

/// The queue thread: admits chunks while fewer than [`WINDOW`] are open, keeps one batch in
/// flight per replica, hands finished chunks out in order.
fn queue_loop<B: Backend + ?Sized>(
    backend: &B,
    input: Receiver<ChunkIn>,
    output: &Sender<Done>,
    progress: &dyn Fn(u64),
    abort: &AtomicBool,
) -> anyhow::Result<()> {
    let replicas = backend.replicas().max(1);
    let limits = backend.limits();
    let mut queue = BatchQueue::new(limits);
    let (rtx, rrx) = bounded::<Reply>(replicas);
    let mut open: BTreeMap<u64, ChunkState> = BTreeMap::new();
    let mut in_flight: HashMap<u64, Vec<Slot>> = HashMap::new();
    let (mut next_chunk, mut next_out, mut next_tag) = (0u64, 0u64, 0u64);
    let mut closed = false;
    loop {
        if abort.load(Ordering::SeqCst) {
            return Ok(());
        }
        // Feed every free replica.
        while in_flight.len() < replicas {
            let flush = closed || open.len() >= WINDOW;
            // At the end of input, spread what is left over the replicas (no idle tail).
            let cap = if closed {
                queue
                    .len()
                    .div_ceil(4 * replicas)
                    .clamp(8, limits.max_batch.max(8))
            } else {
                usize::MAX
            };
            let Some(batch) = queue.next(flush, cap) else {
                break;
            };
            crate::publish::fault::point("score:queue")
                .map_err(|e| anyhow::anyhow!("the batch queue failed: {e}"))?;
            let tag = next_tag;
            next_tag += 1;
            in_flight.insert(tag, batch.slots);
            backend.submit(batch.texts, tag, rtx.clone())?;
        }
        // Hand out finished chunks, in order.
        while open.get(&next_out).is_some_and(|c| c.left == 0) {
            let c = open.remove(&next_out).expect("checked above");
            if output.send(Ok((next_out, c.probs))).is_err() {
                return Ok(()); // the consumer has gone (it failed); stop quietly
            }
            next_out += 1;
        }
        if closed && open.is_empty() && in_flight.is_empty() {
            return Ok(());
        }
        // Wait for a replica or for input.
        let mut sel = Select::new();
        let r_op = (!in_flight.is_empty()).then(|| sel.recv(&rrx));
        let i_op = (!closed && open.len() < WINDOW).then(|| sel.recv(&input));
        if r_op.is_none() && i_op.is_none() {
            anyhow::bail!(
                "the batch queue has nothing to wait for (a bug: {} texts stuck)",
                queue.len()
            );
        }
        let op = sel.select();
        if Some(op.index()) == r_op {
            let (tag, res) = op
                .recv(&rrx)
                .map_err(|_| anyhow::anyhow!("the scorer replicas stopped"))?;
            let slots = in_flight
                .remove(&tag)
                .ok_or_else(|| anyhow::anyhow!("a replica answered an unknown batch {tag}"))?;
            let probs = res?;
            if probs.len() != slots.len() {
                anyhow::bail!(
                    "a replica returned {} results for a batch of {} texts",
                    probs.len(),
                    slots.len()
                );
            }
            let mut units = 0u64;
            for (s, p) in slots.into_iter().zip(probs) {
                let c = open
                    .get_mut(&s.chunk)
                    .ok_or_else(|| anyhow::anyhow!("a result for a closed chunk {}", s.chunk))?;
                units += ((s.pos as usize) < c.counted) as u64;
                c.probs[s.pos as usize] = p;
                c.left -= 1;
            }
            progress(units);
        } else {
            match op.recv(&input) {
                Ok(chunk) => {
                    let n = chunk.texts.len();
                    open.insert(
                        next_chunk,
                        ChunkState {
                            probs: vec![Vec::new(); n],
                            left: n,
                            counted: chunk.counted,
                        },
                    );
                    queue.push(next_chunk, chunk.texts);
                    next_chunk += 1;
                }
                Err(_) => closed = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex;

    fn enc(len: usize, tag: i64) -> Encoded {
        let mut ids = vec![tag; len];
        ids[0] = 0;
        Encoded {
            ids,
            truncated: false,
        }
    }

    const LIM: Limits = Limits {
        token_budget: 256,
        max_batch: 8,
        max_tokens: 512,
    };

    /// A model double: each text's "probabilities" depend only on its own ids; every batch is
    /// checked to hold one padded length within the limits.
    struct Fake {
        replicas: usize,
        batches: Mutex<Vec<(usize, usize)>>,
        fail_at: Option<usize>,
        panic_at: Option<usize>,
        seen: AtomicUsize,
        workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
    }

    impl Fake {
        fn new(replicas: usize) -> Fake {
            Fake {
                replicas,
                batches: Mutex::new(Vec::new()),
                fail_at: None,
                panic_at: None,
                seen: AtomicUsize::new(0),
                workers: Mutex::new(Vec::new()),
            }
        }
    }

    impl Backend for Fake {
        fn replicas(&self) -> usize {
            self.replicas
        }
        fn limits(&self) -> Limits {
            LIM
        }
        fn submit(
            &self,
            batch: Vec<Encoded>,
            tag: u64,
            reply: Sender<Reply>,
        ) -> anyhow::Result<()> {
            let k = self.seen.fetch_add(1, Ordering::SeqCst);
            let buckets: Vec<usize> = batch
                .iter()
                .map(|e| crate::score::padded_len(e.ids.len(), LIM.max_tokens))
                .collect();
            assert!(buckets.iter().all(|b| *b == buckets[0]), "{buckets:?}");
            assert!(batch.len() <= LIM.per_batch(buckets[0]));
            self.batches.lock().unwrap().push((buckets[0], batch.len()));
            let fail = self.fail_at == Some(k);
            let panic = self.panic_at == Some(k);
            // A replica thread per batch: results come back out of order.
            let h = std::thread::spawn(move || {
                if panic {
                    // What a replica does with a panic: report it as the batch's error.
                    let r = std::panic::catch_unwind(|| panic!("boom in a replica"));
                    let msg = panic_message(&*r.unwrap_err());
                    let _ = reply.send((
                        tag,
                        Err(anyhow::anyhow!("a scorer replica panicked: {msg}")),
                    ));
                    return;
                }
                std::thread::sleep(std::time::Duration::from_micros(200 * (tag % 3)));
                let res = if fail {
                    Err(anyhow::anyhow!("injected model error"))
                } else {
                    Ok(batch
                        .iter()
                        .map(|e| vec![e.ids.len() as f32, e.ids.iter().sum::<i64>() as f32])
                        .collect())
                };
                let _ = reply.send((tag, res));
            });
            self.workers.lock().unwrap().push(h);
            Ok(())
        }
    }

    fn chunks(n_chunks: usize, per: usize) -> Vec<Vec<Encoded>> {
        (0..n_chunks)
            .map(|c| {
                (0..per)
                    .map(|i| {
                        let len = 1 + (i * 7 + c * 13) % 90;
                        enc(len, (c * 1000 + i) as i64)
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn queue_fills_batches_across_chunks_and_flushes_only_when_asked() {
        let mut q = BatchQueue::new(LIM);
        // Chunk 0: 5 texts of bucket 32 (fit 8 per batch): not a full batch.
        q.push(0, (0..5).map(|i| enc(20, i)).collect());
        assert!(q.next(false, usize::MAX).is_none());
        // Chunk 1 adds 5 more of the same bucket: one full batch mixing both chunks.
        q.push(1, (0..5).map(|i| enc(30, i)).collect());
        let b = q.next(false, usize::MAX).unwrap();
        assert_eq!(b.bucket, 32);
        assert_eq!(b.slots.len(), 8);
        assert_eq!(b.slots[0], Slot { chunk: 0, pos: 0 });
        assert_eq!(b.slots[7], Slot { chunk: 1, pos: 2 });
        assert!(q.next(false, usize::MAX).is_none());
        let rest = q.next(true, usize::MAX).unwrap();
        assert_eq!(rest.slots.len(), 2);
        assert!(q.is_empty() && q.next(true, usize::MAX).is_none());
    }

    #[test]
    fn oldest_text_first_and_full_batches_before_partial_ones() {
        let mut q = BatchQueue::new(LIM);
        q.push(0, vec![enc(100, 1)]); // bucket 112: 2 per batch
        q.push(1, (0..8).map(|i| enc(10, i)).collect()); // bucket 16: 8 per batch (budget 256/16 = 16, max 8)
                                                         // The oldest text's bucket is not full: the full bucket-16 batch goes first...
        let b = q.next(false, usize::MAX).unwrap();
        assert_eq!((b.bucket, b.slots.len()), (16, 8));
        // ...then, flushing, the oldest.
        let b = q.next(true, usize::MAX).unwrap();
        assert_eq!((b.bucket, b.slots.len()), (112, 1));
        // A cap limits the batch (end-of-input balancing).
        q.push(2, (0..8).map(|i| enc(10, i)).collect());
        assert_eq!(q.next(true, 3).unwrap().slots.len(), 3);
        assert_eq!(q.len(), 5);
    }

    #[test]
    fn stream_returns_every_chunk_in_order_with_each_texts_own_result() {
        for replicas in [1, 2, 3] {
            let fake = Arc::new(Fake::new(replicas));
            let input = chunks(7, 50);
            let want: Vec<Probs> = input
                .iter()
                .map(|c| {
                    c.iter()
                        .map(|e| vec![e.ids.len() as f32, e.ids.iter().sum::<i64>() as f32])
                        .collect()
                })
                .collect();
            let got = Stream::score_all(fake.clone(), input).unwrap();
            assert_eq!(got, want, "replicas {replicas}");
            let batches = fake.batches.lock().unwrap().clone();
            let texts: usize = batches.iter().map(|b| b.1).sum();
            assert_eq!(texts, 350);
            // Continuous: fewer batches than scoring each chunk on its own would take.
            let per_chunk: usize = chunks(7, 50)
                .iter()
                .map(|c| {
                    let lens: Vec<usize> = c.iter().map(|e| e.ids.len()).collect();
                    crate::score::plan_bucketed_batches(&lens, 512, 256, 8).len()
                })
                .sum();
            assert!(
                batches.len() < per_chunk,
                "{} vs {per_chunk}",
                batches.len()
            );
        }
    }

    #[test]
    fn empty_chunks_and_empty_input() {
        let fake = Arc::new(Fake::new(2));
        let got =
            Stream::score_all(fake.clone(), vec![vec![], chunks(1, 3).remove(0), vec![]]).unwrap();
        assert_eq!(got.len(), 3);
        assert!(got[0].is_empty() && got[2].is_empty());
        assert_eq!(got[1].len(), 3);
        assert!(Stream::score_all(fake, vec![]).unwrap().is_empty());
    }

    #[test]
    fn a_replica_error_or_panic_fails_the_stream() {
        let mut f = Fake::new(2);
        f.fail_at = Some(3);
        let e = Stream::score_all(Arc::new(f), chunks(5, 40)).unwrap_err();
        assert!(format!("{e:#}").contains("injected model error"), "{e:#}");
        let mut f = Fake::new(2);
        f.panic_at = Some(2);
        let e = Stream::score_all(Arc::new(f), chunks(5, 40)).unwrap_err();
        assert!(format!("{e:#}").contains("boom in a replica"), "{e:#}");
    }

    #[test]
    fn progress_counts_per_batch() {
        let fake = Arc::new(Fake::new(2));
        let seen = Arc::new(AtomicUsize::new(0));
        let calls = Arc::new(AtomicUsize::new(0));
        let (s2, c2) = (seen.clone(), calls.clone());
        let mut s = Stream::start(fake, move |n| {
            s2.fetch_add(n as usize, Ordering::SeqCst);
            c2.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        for c in chunks(3, 40) {
            let chunk = ChunkIn {
                texts: c,
                counted: 20,
            };
            s.input().unwrap().send(chunk).unwrap();
        }
        s.close_input();
        let mut n = 0;
        while let Ok(r) = s.output().recv() {
            r.unwrap();
            n += 1;
        }
        assert_eq!(n, 3);
        s.finish().unwrap();
        assert_eq!(seen.load(Ordering::SeqCst), 60);
        assert!(
            calls.load(Ordering::SeqCst) > 3,
            "progress moved once per batch"
        );
    }

    #[test]
    fn cores_split() {
        let c = Cores::cpu(2, 90 << 20, None);
        assert_eq!((c.replicas, c.intra_op, c.rayon), (2, 1, 1));
        let c = Cores::cpu(16, 90 << 20, None);
        assert_eq!((c.replicas * c.intra_op, c.rayon), (16, 4));
        let c = Cores::cpu(8, 90 << 20, Some(2));
        assert_eq!((c.replicas, c.intra_op), (2, 4));
    }
}
