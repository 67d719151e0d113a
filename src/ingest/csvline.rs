//! CSV records assembled from physical lines, so that a broken quote costs one line, not the file.
//!
//! A quoted field may span lines, but an export with an unbalanced quote makes the rest of the
//! file one giant field. [`RecordReader`] follows the RFC 4180 quoting rules and watches every
//! quoted field that crosses a line break: when it reaches the end of the file, swallows a line
//! that reads as a record of its own (same field count, a leading id shaped like the ids before
//! it), spans more than [`MAX_FIELD_LINES`] lines, or closes with text after the closing quote,
//! the line that opened it is rejected (`unbalanced_quote`) and reading resumes on the next line.
//! Line numbers are physical lines (CRLF counts once).

use std::collections::{HashSet, VecDeque};
use std::io::{self, BufRead};

/// A quoted field spanning more lines than this is taken as an unbalanced quote.
pub const MAX_FIELD_LINES: usize = 100;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum St {
    #[default]
    Start,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

/// One record being parsed: fields so far and the quoting state.
#[derive(Debug, Default, Clone)]
pub struct Record {
    pub fields: Vec<Vec<u8>>,
    cur: Vec<u8>,
    st: St,
    /// Text followed a closing quote (`"abc"def`): kept, but a sign of broken quoting.
    pub stray: bool,
}

impl Record {
    /// Feeds bytes (a line, or `\n` between lines) through the RFC 4180 state machine.
    pub fn feed(&mut self, bytes: &[u8], delim: u8) {
        let mut i = 0;
        while i < bytes.len() {
            // Runs of ordinary bytes are copied at once; only separators and quotes need a state step.
            let stop = match self.st {
                St::Unquoted => Some(delim),
                St::Quoted => Some(b'"'),
                St::Start | St::QuoteInQuoted => None,
            };
            if let Some(stop) = stop {
                let run = bytes[i..]
                    .iter()
                    .position(|&b| b == stop)
                    .unwrap_or(bytes.len() - i);
                self.cur.extend_from_slice(&bytes[i..i + run]);
                i += run;
                if i == bytes.len() {
                    break;
                }
            }
            let b = bytes[i];
            i += 1;
            match self.st {
                St::Start => {
                    if b == b'"' {
                        self.st = St::Quoted;
                    } else if b == delim {
                        self.fields.push(std::mem::take(&mut self.cur));
                    } else {
                        self.cur.push(b);
                        self.st = St::Unquoted;
                    }
                }
                St::Unquoted => {
                    if b == delim {
                        self.fields.push(std::mem::take(&mut self.cur));
                        self.st = St::Start;
                    } else {
                        self.cur.push(b);
                    }
                }
                St::Quoted => {
                    if b == b'"' {
                        self.st = St::QuoteInQuoted;
                    } else {
                        self.cur.push(b);
                    }
                }
                St::QuoteInQuoted => {
                    if b == b'"' {
                        self.cur.push(b'"');
                        self.st = St::Quoted;
                    } else if b == delim {
                        self.fields.push(std::mem::take(&mut self.cur));
                        self.st = St::Start;
                    } else {
                        self.stray = true;
                        self.cur.push(b);
                        self.st = St::Unquoted;
                    }
                }
            }
        }
    }

    /// Inside a quoted field: the record continues on the next line.
    pub fn is_open(&self) -> bool {
        self.st == St::Quoted
    }

    /// Ends the record (the last field).
    pub fn finish(&mut self) {
        self.fields.push(std::mem::take(&mut self.cur));
        self.st = St::Start;
    }
}

/// Physical lines with their numbers, with a push-back queue for re-reading.
pub struct Lines {
    rdr: Box<dyn BufRead + Send>,
    line_no: u64,
    pushback: VecDeque<(u64, Vec<u8>)>,
}

impl Lines {
    pub fn new(rdr: Box<dyn BufRead + Send>) -> Lines {
        Lines {
            rdr,
            line_no: 0,
            pushback: VecDeque::new(),
        }
    }

    /// The next physical line without its terminator (`\n` or `\r\n`); a UTF-8 BOM on line 1 is dropped.
    pub fn next_line(&mut self) -> io::Result<Option<(u64, Vec<u8>)>> {
        if let Some(l) = self.pushback.pop_front() {
            return Ok(Some(l));
        }
        let mut buf = Vec::new();
        if self.rdr.read_until(b'\n', &mut buf)? == 0 {
            return Ok(None);
        }
        self.line_no += 1;
        if buf.last() == Some(&b'\n') {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        }
        if self.line_no == 1 && buf.starts_with(b"\xEF\xBB\xBF") {
            buf.drain(..3);
        }
        Ok(Some((self.line_no, buf)))
    }

    fn push_front_all(&mut self, lines: Vec<(u64, Vec<u8>)>) {
        for l in lines.into_iter().rev() {
            self.pushback.push_front(l);
        }
    }

    /// The header: the first non-empty record, as (line, raw bytes with `\n` between its lines).
    pub fn header(&mut self, delim: u8) -> io::Result<Option<(u64, Vec<u8>)>> {
        loop {
            let Some((ln, first)) = self.next_line()? else {
                return Ok(None);
            };
            if first.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            let mut rec = Record::default();
            rec.feed(&first, delim);
            let mut raw = first;
            let mut n = 0;
            while rec.is_open() && n < MAX_FIELD_LINES {
                let Some((_, more)) = self.next_line()? else {
                    break;
                };
                rec.feed(b"\n", delim);
                rec.feed(&more, delim);
                raw.push(b'\n');
                raw.extend_from_slice(&more);
                n += 1;
            }
            return Ok(Some((ln, raw)));
        }
    }
}

/// One record as read: where it starts, its raw bytes, its fields, or why its quote is unbalanced.
#[derive(Debug)]
pub struct Event {
    pub line: u64,
    pub raw: Vec<u8>,
    pub record: Record,
    /// Some(reason): only the opening line is rejected; the lines after it are read again.
    pub unbalanced: Option<String>,
}

/// Records of a CSV body (after the header).
pub struct RecordReader {
    lines: Lines,
    delim: u8,
    /// Fields in the header.
    n: usize,
    /// Shapes of the first field of good records (`r9`, `9`, `a-9`), to spot swallowed records.
    shapes: HashSet<String>,
}

/// `r12` → `a9`, `2026-11-01` → `9-9-9`: the character classes of an id, runs collapsed.
fn shape(field: &[u8]) -> Option<String> {
    if field.is_empty() || field.len() > 64 {
        return None;
    }
    let mut s = String::new();
    for &b in field {
        let c = if b.is_ascii_digit() {
            '9'
        } else if b.is_ascii_alphabetic() {
            'a'
        } else if b"-_.:/#".contains(&b) {
            b as char
        } else {
            return None;
        };
        if !s.ends_with(c) || !matches!(c, '9' | 'a') {
            s.push(c);
        }
    }
    Some(s)
}

impl RecordReader {
    pub fn new(lines: Lines, delim: u8, n: usize) -> RecordReader {
        RecordReader {
            lines,
            delim,
            n,
            shapes: HashSet::new(),
        }
    }

    /// Whether a line inside a quoted field reads as a record of its own.
    fn looks_like_record(&self, line: &[u8]) -> bool {
        if self.n < 2 {
            return false;
        }
        let mut r = Record::default();
        r.feed(line, self.delim);
        if r.is_open() {
            return false;
        }
        r.finish();
        if r.fields.len() < self.n {
            return false;
        }
        let first = &r.fields[0];
        match shape(first) {
            None => false,
            Some(s) if !self.shapes.is_empty() => self.shapes.contains(&s),
            // Nothing seen yet: a leading token with a digit (an id, not a word).
            Some(_) => first.iter().any(u8::is_ascii_digit) && r.fields.len() == self.n,
        }
    }

    fn learn(&mut self, rec: &Record) {
        if rec.fields.len() == self.n && self.shapes.len() < 32 {
            if let Some(s) = shape(&rec.fields[0]) {
                self.shapes.insert(s);
            }
        }
    }

    /// The next record; empty lines are skipped.
    pub fn next_record(&mut self) -> io::Result<Option<Event>> {
        let d = self.delim;
        loop {
            let Some((ln, first)) = self.lines.next_line()? else {
                return Ok(None);
            };
            if first.is_empty() {
                continue;
            }
            let mut rec = Record::default();
            rec.feed(&first, d);
            if !rec.is_open() {
                rec.finish();
                self.learn(&rec);
                return Ok(Some(Event {
                    line: ln,
                    raw: first,
                    record: rec,
                    unbalanced: None,
                }));
            }
            let mut taken: Vec<(u64, Vec<u8>)> = Vec::new();
            let why = loop {
                let Some((l2, bytes)) = self.lines.next_line()? else {
                    break Some(format!(
                        "a quote opened on line {ln} never closes (the file ends inside it)"
                    ));
                };
                if self.looks_like_record(&bytes) {
                    taken.push((l2, bytes));
                    break Some(format!(
                        "a quote opened on line {ln} swallows line {l2}, which reads as a record of its own"
                    ));
                }
                if taken.len() >= MAX_FIELD_LINES {
                    taken.push((l2, bytes));
                    break Some(format!(
                        "a quoted field opened on line {ln} spans more than {MAX_FIELD_LINES} lines"
                    ));
                }
                rec.feed(b"\n", d);
                rec.feed(&bytes, d);
                taken.push((l2, bytes));
                if !rec.is_open() {
                    break rec.stray.then(|| {
                        format!(
                            "the quoted field opened on line {ln} closes on line {l2} with text after the closing quote"
                        )
                    });
                }
            };
            match why {
                None => {
                    rec.finish();
                    self.learn(&rec);
                    let mut raw = first;
                    for (_, l) in &taken {
                        raw.push(b'\n');
                        raw.extend_from_slice(l);
                    }
                    return Ok(Some(Event {
                        line: ln,
                        raw,
                        record: rec,
                        unbalanced: None,
                    }));
                }
                Some(w) => {
                    self.lines.push_front_all(taken);
                    return Ok(Some(Event {
                        line: ln,
                        raw: first,
                        record: Record::default(),
                        unbalanced: Some(w),
                    }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(body: &str, n: usize) -> Vec<(u64, String)> {
        let lines = Lines::new(Box::new(std::io::Cursor::new(body.as_bytes().to_vec())));
        let mut r = RecordReader::new(lines, b',', n);
        let mut out = Vec::new();
        while let Some(e) = r.next_record().unwrap() {
            out.push((
                e.line,
                match e.unbalanced {
                    Some(_) => "UNBALANCED".to_string(),
                    None => e
                        .record
                        .fields
                        .iter()
                        .map(|f| String::from_utf8_lossy(f).into_owned())
                        .collect::<Vec<_>>()
                        .join("|"),
                },
            ));
        }
        out
    }

    #[test]
    fn quoted_newlines_and_escaped_quotes_are_one_record() {
        let got = events(
            "1,\"multi\r\nline, with comma\",x\r\n2,\"say \"\"hi\"\"\",y\r\n",
            3,
        );
        assert_eq!(
            got,
            vec![
                (1, "1|multi\nline, with comma|x".to_string()),
                (3, "2|say \"hi\"|y".to_string())
            ]
        );
    }

    #[test]
    fn unbalanced_quote_costs_one_line() {
        let got = events("1,a,x\n2,\"b,x\n3,c,x\n4,d,x\n", 3);
        assert_eq!(
            got.iter()
                .map(|(l, s)| format!("{l}:{s}"))
                .collect::<Vec<_>>(),
            vec!["1:1|a|x", "2:UNBALANCED", "3:3|c|x", "4:4|d|x"]
        );
    }

    #[test]
    fn shapes() {
        assert_eq!(shape(b"r12").as_deref(), Some("a9"));
        assert_eq!(shape(b"2026-11-01").as_deref(), Some("9-9-9"));
        assert_eq!(shape(b"two words"), None);
    }
}
