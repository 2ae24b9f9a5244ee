//! Finds which lines of a block match which patterns, without testing every line.
//!
//! Three paths, chosen per pattern when the matcher is built:
//!
//! 1. **Literal prefilter** (most patterns): the block is ASCII-lowercased into a
//!    scratch buffer and searched for every pattern's primary literal set at once
//!    (Teddy, SIMD, from the aho-corasick crate). Only a line holding a hit is looked
//!    at: the patterns whose literals hit in that line are candidates; a candidate must
//!    also hold a member of each of its other required sets; then its regex decides.
//! 2. **Union scan**: patterns the regex crate compiles but that require no literal
//!    (`\d{3}ms`) are joined, as widened copies without assertions (see
//!    `CompiledPattern::scan_source`), into one regex run over the whole block; each
//!    line it hits is tested against those patterns.
//! 3. **Every line**: fancy-regex patterns with neither a required literal nor a
//!    widened copy the regex crate takes are tested on every line. This is the slow
//!    path, and only such patterns take it.
//!
//! A fancy-regex pattern may leave a line undecided (see `pattern.rs`): such lines are
//! reported apart from the matches, never as "no match".
//!
//! A block is whole lines, each ending in `\n`. Whatever finds a candidate line, the
//! patterns are run on the line alone, without its line end (`\n` or `\r\n`), so every
//! path gives exactly the answer of testing each line by itself.

use aho_corasick::{AhoCorasick, MatchKind, Span, packed};
use memchr::memmem;

use super::literals::LiteralSet;
use super::pattern::{CompiledPattern, Verdict};
use crate::base::event::{PatternErrorReason, trim_line_end};

/// Index of a pattern in the matcher's list.
pub type PatternId = usize;

/// One match: the line's bounds in the block (without the `\n`) and the pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineMatch {
    pub start: usize,
    pub end: usize,
    pub pattern: PatternId,
}

/// A line a pattern could not decide, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Undecided {
    pub pattern: PatternId,
    pub reason: PatternErrorReason,
}

/// What [`Matcher::find`] reports: the matches, and the lines left undecided.
#[derive(Debug, Default)]
pub struct Found {
    pub matches: Vec<LineMatch>,
    pub undecided: Vec<Undecided>,
}

pub struct Matcher {
    patterns: Vec<CompiledPattern>,
    prefilter: Option<Prefilter>,
    scan: Option<Scan>,
    every_line: Vec<PatternId>,
    /// The patterns on the backtracking engine, whose time budgets start anew with
    /// each block.
    backtracking: Vec<PatternId>,
    /// The block, ASCII-lowercased: reused between blocks, as large as the largest.
    lowered: Vec<u8>,
    candidates: Vec<PatternId>,
}

struct Prefilter {
    searcher: LiteralSearcher,
    /// For each literal of the searcher, the patterns it makes candidates.
    literal_patterns: Vec<Vec<PatternId>>,
    /// For each pattern, its other required sets: a candidate line must contain a
    /// member of each.
    checks: Vec<Vec<Vec<memmem::Finder<'static>>>>,
}

/// Regexes run over whole blocks, each with the patterns whose candidate lines it finds.
struct Scan {
    searches: Vec<(regex::bytes::Regex, Vec<PatternId>)>,
}

/// Teddy when the CPU and the literal count allow it, else an Aho-Corasick automaton.
enum LiteralSearcher {
    Packed(packed::Searcher),
    Automaton(AhoCorasick),
}

impl LiteralSearcher {
    fn new(literals: &[Vec<u8>]) -> Result<LiteralSearcher, String> {
        let packed = packed::Config::new()
            .match_kind(packed::MatchKind::LeftmostFirst)
            .builder()
            .extend(literals)
            .build();
        match packed {
            Some(searcher) => Ok(LiteralSearcher::Packed(searcher)),
            None => AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostFirst)
                .build(literals)
                .map(LiteralSearcher::Automaton)
                .map_err(|err| err.to_string()),
        }
    }

    /// The leftmost literal in `haystack[span]`: its start and its index.
    fn find(&self, haystack: &[u8], span: Span) -> Option<(usize, usize)> {
        let found = match self {
            LiteralSearcher::Packed(searcher) => searcher.find_in(haystack, span),
            LiteralSearcher::Automaton(ac) => {
                ac.find(aho_corasick::Input::new(haystack).span(span))
            }
        };
        found.map(|m| (m.start(), m.pattern().as_usize()))
    }
}

impl Matcher {
    /// Sorts `patterns` into the three paths and builds the searchers.
    pub fn new(patterns: Vec<CompiledPattern>) -> Result<Matcher, String> {
        let mut primary: Vec<(Vec<u8>, PatternId)> = Vec::new();
        let mut scanned = Vec::new();
        let mut every_line = Vec::new();
        for (id, pattern) in patterns.iter().enumerate() {
            match (pattern.requirement.primary(), pattern.scan_source()) {
                (Some(set), _) => primary.extend(set.iter().map(|literal| (literal.clone(), id))),
                (None, Some(_)) => scanned.push(id),
                (None, None) => every_line.push(id),
            }
        }
        let prefilter = (!primary.is_empty())
            .then(|| Prefilter::new(&patterns, primary))
            .transpose()?;
        let scan = (!scanned.is_empty()).then(|| {
            let (scan, unscannable) = Scan::new(&patterns, scanned);
            every_line.extend(unscannable);
            every_line.sort_unstable();
            scan
        });
        let backtracking = (0..patterns.len())
            .filter(|&id| patterns[id].backtracks())
            .collect();
        Ok(Matcher {
            patterns,
            prefilter,
            scan,
            every_line,
            backtracking,
            lowered: Vec::new(),
            candidates: Vec::new(),
        })
    }

    pub fn patterns(&self) -> &[CompiledPattern] {
        &self.patterns
    }

    /// Appends every (line, pattern) match of `block` to `found`, in line order and,
    /// within a line, in pattern order, and the lines a pattern could not decide.
    /// `block` is whole `\n`-terminated lines.
    pub fn find(&mut self, block: &[u8], found: &mut Found) {
        for &id in &self.backtracking {
            self.patterns[id].start_block();
        }
        let first = found.matches.len();
        if let Some(prefilter) = &self.prefilter {
            lowercase_into(block, &mut self.lowered);
            prefilter.find(
                block,
                &self.lowered,
                &mut self.patterns,
                &mut self.candidates,
                found,
            );
        }
        if let Some(scan) = &self.scan {
            scan.find(block, &mut self.patterns, found);
        }
        if !self.every_line.is_empty() {
            let mut start = 0;
            for line in block.split_inclusive(|&b| b == b'\n') {
                let end = start + line.len() - usize::from(line.ends_with(b"\n"));
                test_line(
                    block,
                    start,
                    end,
                    &self.every_line,
                    &mut self.patterns,
                    found,
                );
                start = end + 1;
            }
        }
        // Each search finds its matches in line order; only several need merging.
        let scans = self.scan.as_ref().map_or(0, |scan| scan.searches.len());
        let searches = usize::from(self.prefilter.is_some())
            + scans
            + usize::from(!self.every_line.is_empty());
        if searches > 1 {
            found.matches[first..].sort_unstable_by_key(|m| (m.start, m.pattern));
        }
    }
}

impl Prefilter {
    fn new(
        patterns: &[CompiledPattern],
        mut primary: Vec<(Vec<u8>, PatternId)>,
    ) -> Result<Prefilter, String> {
        // A literal that starts with another literal is dropped and its patterns are
        // given to the shorter one: a leftmost-first search reports only one literal
        // per position, and the shorter one is present wherever the longer one is.
        primary.sort();
        let mut literals: Vec<Vec<u8>> = Vec::new();
        let mut literal_patterns: Vec<Vec<PatternId>> = Vec::new();
        for (literal, pattern) in primary {
            match literals.iter().position(|kept| literal.starts_with(kept)) {
                Some(kept) => literal_patterns[kept].push(pattern),
                None => {
                    literals.push(literal);
                    literal_patterns.push(vec![pattern]);
                }
            }
        }
        for ids in &mut literal_patterns {
            ids.sort_unstable();
            ids.dedup();
        }
        let finders = |set: &LiteralSet| {
            set.iter()
                .map(|lit| memmem::Finder::new(lit).into_owned())
                .collect()
        };
        let checks = patterns
            .iter()
            .map(|p| p.requirement.others().iter().map(finders).collect())
            .collect();
        Ok(Prefilter {
            searcher: LiteralSearcher::new(&literals)?,
            literal_patterns,
            checks,
        })
    }

    fn find(
        &self,
        block: &[u8],
        lowered: &[u8],
        patterns: &mut [CompiledPattern],
        candidates: &mut Vec<PatternId>,
        found: &mut Found,
    ) {
        let mut at = 0;
        while let Some((hit, literal)) = self.searcher.find(lowered, Span::from(at..lowered.len()))
        {
            let (start, end) = line_bounds(lowered, hit);
            // Every literal hit in this line adds its patterns; the line is then done.
            candidates.clear();
            candidates.extend_from_slice(&self.literal_patterns[literal]);
            let mut next = hit + 1;
            while let Some((hit, literal)) = self.searcher.find(lowered, Span::from(next..end)) {
                candidates.extend_from_slice(&self.literal_patterns[literal]);
                next = hit + 1;
            }
            candidates.sort_unstable();
            candidates.dedup();
            let lowered_line = &lowered[start..end];
            candidates.retain(|&id| {
                self.checks[id]
                    .iter()
                    .all(|set| set.iter().any(|finder| finder.find(lowered_line).is_some()))
            });
            test_line(block, start, end, candidates, patterns, found);
            at = end + 1;
            if at >= lowered.len() {
                break;
            }
        }
    }
}

impl Scan {
    /// One union of the patterns' widened copies; if the union is too big for the
    /// regex crate's size limit, one search per pattern instead. Patterns whose copy
    /// cannot be compiled even alone are returned, to be tested on every line.
    fn new(patterns: &[CompiledPattern], ids: Vec<PatternId>) -> (Scan, Vec<PatternId>) {
        let source = |id: PatternId| {
            patterns[id]
                .scan_source()
                .map(|source| format!("(?:{source})"))
        };
        let union: Vec<String> = ids.iter().filter_map(|&id| source(id)).collect();
        if let Ok(union) = regex::bytes::Regex::new(&union.join("|")) {
            return (
                Scan {
                    searches: vec![(union, ids)],
                },
                Vec::new(),
            );
        }
        let mut searches = Vec::new();
        let mut unscannable = Vec::new();
        for id in ids {
            match source(id).map(|source| regex::bytes::Regex::new(&source)) {
                Some(Ok(search)) => searches.push((search, vec![id])),
                _ => unscannable.push(id),
            }
        }
        (Scan { searches }, unscannable)
    }

    fn find(&self, block: &[u8], patterns: &mut [CompiledPattern], found: &mut Found) {
        for (search, ids) in &self.searches {
            let mut at = 0;
            // A block ends with `\n`, so a hit at its very end lies on no line.
            while let Some(hit) = search
                .find_at(block, at)
                .filter(|hit| hit.start() < block.len())
            {
                let (start, end) = line_bounds(block, hit.start());
                test_line(block, start, end, ids, patterns, found);
                at = end + 1;
            }
        }
    }
}

/// Tests the line `block[start..end]` against `ids`, recording each match (and each
/// pattern that could not tell).
fn test_line(
    block: &[u8],
    start: usize,
    end: usize,
    ids: &[PatternId],
    patterns: &mut [CompiledPattern],
    found: &mut Found,
) {
    let line = trim_line_end(&block[start..end]);
    for &id in ids {
        match patterns[id].verdict(line) {
            Verdict::Match => found.matches.push(LineMatch {
                start,
                end,
                pattern: id,
            }),
            Verdict::NoMatch => {}
            Verdict::Undecided(reason) => found.undecided.push(Undecided {
                pattern: id,
                reason,
            }),
        }
    }
}

/// The bounds of the line holding byte `at`, without its `\n`.
fn line_bounds(block: &[u8], at: usize) -> (usize, usize) {
    let start = memchr::memrchr(b'\n', &block[..at]).map_or(0, |i| i + 1);
    let end = memchr::memchr(b'\n', &block[at..]).map_or(block.len(), |i| at + i);
    (start, end)
}

/// Copies `src` into `dst` with ASCII letters lowercased; written as a plain loop over
/// equal-length slices so that it compiles to SIMD.
fn lowercase_into(src: &[u8], dst: &mut Vec<u8>) {
    dst.resize(src.len(), 0);
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = s | (u8::from(s.wrapping_sub(b'A') < 26) << 5);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::event::Severity;
    use crate::stages::log_patterns::PatternConfig;

    fn matcher(patterns: &[&str]) -> Matcher {
        let compiled = patterns
            .iter()
            .enumerate()
            .map(|(i, p)| {
                CompiledPattern::compile(&PatternConfig {
                    name: format!("p{i}"),
                    pattern: (*p).into(),
                    severity: Severity::Info,
                    description: String::new(),
                    origin: Default::default(),
                })
                .unwrap()
            })
            .collect();
        Matcher::new(compiled).unwrap()
    }

    /// (line number, pattern) of every match, for readable assertions.
    fn matches(m: &mut Matcher, block: &str) -> Vec<(usize, PatternId)> {
        let mut found = Found::default();
        m.find(block.as_bytes(), &mut found);
        assert!(found.undecided.is_empty(), "{:?}", found.undecided);
        found
            .matches
            .iter()
            .map(|f| {
                (
                    bytecount::count(&block.as_bytes()[..f.start], b'\n'),
                    f.pattern,
                )
            })
            .collect()
    }

    /// What testing each line alone gives: the reference every path must agree with.
    fn reference(patterns: &[&str], block: &str) -> Vec<(usize, PatternId)> {
        let regexes: Vec<fancy_regex::Regex> = patterns
            .iter()
            .map(|p| fancy_regex::Regex::new(p).unwrap())
            .collect();
        let mut out = Vec::new();
        for (n, line) in block.split_inclusive('\n').enumerate() {
            let line = line.strip_suffix('\n').unwrap_or(line);
            let line = line.strip_suffix('\r').unwrap_or(line);
            for (id, regex) in regexes.iter().enumerate() {
                if regex.is_match(line).unwrap() {
                    out.push((n, id));
                }
            }
        }
        out
    }

    const BLOCK: &str = "\
2026-11-28 INFO started\r
2026-11-28 ERROR java.lang.OutOfMemoryError: Java heap space\r
panic: runtime error\r
  not a panic: indented\r
GET /x HTTP/1.1\" 503 12 took 250ms\r
kernel: Out of memory: Killed process 4242 (java)\r
FATAL: eof\n\
level=warn status=503 msg=timeout\n\
ERROR db: SQLException raised; could not connect to server\n\
plain FATALITY is not FATAL?\n\
";

    const PATTERNS: [&str; 9] = [
        r"(?i)(out of memory|java\.lang\.OutOfMemoryError)",
        r"^panic:",
        r"\bFATAL\b",
        r#"HTTP/[0-9.]+" 5[0-9]{2} [0-9]"#,
        r"\bstatus=5\d{2}\b",
        r"ERROR .*(SQLException|could not connect to server)",
        r"\d{3}ms$",
        r"(?i)\b(timeout|timed out)\b(?! retried)",
        r"Killed process (\d+) \(\S+\)",
    ];

    #[test]
    fn every_path_agrees_with_testing_each_line_alone() {
        let mut m = matcher(&PATTERNS);
        assert!(
            m.prefilter.is_some() && m.scan.is_some(),
            "both block paths are exercised"
        );
        assert_eq!(matches(&mut m, BLOCK), reference(&PATTERNS, BLOCK));
        assert_eq!(matches(&mut m, BLOCK).len(), 11);
    }

    #[test]
    fn lookaround_without_literals_is_scanned_by_its_widened_copy() {
        let patterns = [r"^(?!.*INFO).*\d$", r"\bFATAL\b"];
        let mut m = matcher(&patterns);
        assert!(m.every_line.is_empty());
        assert_eq!(m.scan.as_ref().map(|scan| scan.searches.len()), Some(1));
        assert_eq!(matches(&mut m, BLOCK), reference(&patterns, BLOCK));
    }

    #[test]
    fn a_pattern_too_big_to_widen_is_tested_on_every_line() {
        // fancy-regex runs the repetition itself; its widened copy, `\w{2000}`, is past
        // the regex crate's size limit.
        let patterns = [r"(\w{100}(?!y)){20}"];
        let mut m = matcher(&patterns);
        assert_eq!(m.every_line, [0]);
        let block = format!("short\n{}\n", "a".repeat(2000));
        assert_eq!(matches(&mut m, &block), [(1, 0)]);
        assert_eq!(matches(&mut m, &block), reference(&patterns, &block));
    }

    #[test]
    fn a_line_matching_several_patterns_counts_once_per_pattern() {
        let mut m = matcher(&[r"FATAL", r"(?i)fatal", r"eof$"]);
        assert_eq!(
            matches(&mut m, "FATAL: eof\nok\n"),
            [(0, 0), (0, 1), (0, 2)]
        );
    }

    #[test]
    fn literal_prefixes_do_not_hide_longer_literals() {
        // `crit` is a prefix of `critical`: both patterns must still be found.
        let mut m = matcher(&[r"\bcrit\b", r"critical failure"]);
        assert_eq!(
            matches(&mut m, "critical failure\ncrit\n"),
            [(0, 1), (1, 0)]
        );
    }

    #[test]
    fn unicode_case_folding_is_honoured() {
        // (?i)k matches the Kelvin sign; (?i)s matches the long s.
        let mut m = matcher(&[r"(?i)deadlock detected", r"(?i)no space left"]);
        assert_eq!(
            matches(&mut m, "DEADLOC\u{212a} DETECTED\nno \u{17f}pace left\n"),
            [(0, 0), (1, 1)]
        );
    }

    /// A small seeded generator (xorshift64), so the random test is the same every run.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    const WORDS: [&str; 14] = [
        "error", "Error", "ERROR", "fail", "timeout", "time", "kill", "ok", "db", "sk", "5", "=",
        ".", "é",
    ];

    /// A random pattern from literals, classes, anchors, alternation, repetition, case
    /// insensitivity and (sometimes) lookaround or a backreference.
    fn random_pattern(rng: &mut Rng, depth: usize) -> String {
        let atom = |rng: &mut Rng| -> String {
            match rng.below(9) {
                0..=3 => regex_syntax::escape(rng.pick(&WORDS)),
                4 => rng
                    .pick(&["[0-9]", r"\d", "[a-f]", r"\w", r"\S", ".", "[kK]", "[^ ]"])
                    .to_owned(),
                5 => rng
                    .pick(&["^", "$", r"\b", r"\B", r"\A", r"\z", "(?m:^)", "(?m:$)"])
                    .to_owned(),
                6 if depth < 2 => format!(
                    "(?:{}|{})",
                    random_pattern(rng, depth + 1),
                    random_pattern(rng, depth + 1)
                ),
                7 if depth < 2 => format!(
                    "({}){}",
                    random_pattern(rng, depth + 1),
                    rng.pick(&["?", "*", "+", "{2}", "{1,3}"])
                ),
                _ => " ".to_owned(),
            }
        };
        let mut pattern: String = (0..1 + rng.below(4)).map(|_| atom(rng)).collect();
        if depth == 0 {
            match rng.below(10) {
                0..=2 => pattern.insert_str(0, rng.pick(&["(?i)", "(?i)", "(?s)", "(?m)"])),
                3 => pattern.push_str(&format!("(?!{})", regex_syntax::escape(rng.pick(&WORDS)))),
                4 => pattern.insert_str(
                    0,
                    &format!("(?<={})", regex_syntax::escape(rng.pick(&WORDS))),
                ),
                5 => pattern = format!("({}) .*\\1", regex_syntax::escape(rng.pick(&WORDS))),
                _ => {}
            }
        }
        pattern
    }

    fn random_block(rng: &mut Rng) -> String {
        let mut block = String::new();
        for _ in 0..rng.below(40) {
            for _ in 0..rng.below(8) {
                block.push_str(rng.pick(&WORDS));
                block.push_str(rng.pick(&[" ", " ", "", "=", "\r", "\u{212a}", "\u{17f}", "7"]));
            }
            block.push_str(rng.pick(&["\n", "\n", "\r\n"]));
        }
        block
    }

    /// Found by a differential run: block-level anchors and CRLF mode must not make
    /// the union scan miss lines (`\A`, `(?-m:$)`, `.` over a lone `\r`).
    #[test]
    fn the_union_scan_misses_no_line_because_of_anchors_or_carriage_returns() {
        let block = "23\nK timeout critical\r\ncritical \r.ab_\r\n\r \nerr\r\n";
        for patterns in [
            &[r"(?-m:^)[^x]{2}x?"][..],
            &[r"(?-m:$)"],
            &[r"\z"],
            &[r"\A\w"],
            &[".{2}"],
            &[r"(?i)(?:.|FAIL?)b"],
        ] {
            let mut m = matcher(patterns);
            assert!(m.scan.is_some(), "{patterns:?} takes the union scan");
            assert_eq!(
                matches(&mut m, block),
                reference(patterns, block),
                "{patterns:?}"
            );
        }
    }

    #[test]
    fn patterns_too_big_to_join_are_scanned_one_by_one() {
        // Each compiles alone; together they pass the regex crate's size limit.
        let patterns = [
            r"\w{60}\d{60}",
            r"\w{60}\s{60}\d",
            r"[a-z]{200}",
            r"\w{100}",
        ];
        let mut m = matcher(&patterns);
        assert_eq!(m.scan.as_ref().map(|scan| scan.searches.len()), Some(4));
        let block = format!(
            "{}\nshort\n{}{}\n",
            "a".repeat(200),
            "b".repeat(60),
            "1".repeat(60)
        );
        assert_eq!(matches(&mut m, &block), [(0, 2), (0, 3), (2, 0), (2, 3)]);
        assert_eq!(matches(&mut m, &block), reference(&patterns, &block));
    }

    #[test]
    fn random_patterns_agree_with_testing_each_line_alone() {
        let mut rng = Rng(0x5eed_1234_abcd_ef01);
        let (mut matched, mut paths) = (0, [0; 3]);
        for _ in 0..300 {
            let patterns: Vec<String> = (0..1 + rng.below(4))
                .map(|_| random_pattern(&mut rng, 0))
                .collect();
            let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
            let mut m = matcher(&patterns);
            let used = [
                m.prefilter.is_some(),
                m.scan.is_some(),
                !m.every_line.is_empty(),
            ];
            for (count, used) in paths.iter_mut().zip(used) {
                *count += usize::from(used);
            }
            for _ in 0..5 {
                let block = random_block(&mut rng);
                let expected = reference(&patterns, &block);
                assert_eq!(
                    matches(&mut m, &block),
                    expected,
                    "patterns {patterns:?}\nblock {block:?}"
                );
                matched += expected.len();
            }
        }
        // The test means something only if the cases match often and use both block
        // paths (random patterns never need the every-line one: see the test above).
        assert!(matched > 5_000, "{matched} matches");
        assert!(
            paths[..2].iter().all(|&count| count > 20),
            "matchers per path: {paths:?}"
        );
    }
}
