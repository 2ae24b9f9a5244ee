//! Required literals of a regular expression: strings that every match must contain.
//!
//! The matcher searches a whole block for these literals first (a SIMD multi-literal
//! search runs at several GB/s) and runs regexes only on the few lines that hold one.
//! For that to be correct the literals must be *required*: a line that contains none of
//! a pattern's literals must be a line the pattern cannot match. Every rule below keeps
//! that property; when in doubt a node contributes nothing.
//!
//! Literals are *folded*: ASCII letters are lowercased, and the matcher searches an
//! ASCII-lowercased copy of the block. That makes one literal cover every ASCII case
//! variant, which is what `(?i)` patterns need; for case-sensitive patterns it only
//! admits a few more candidate lines, which the regex then rejects. Non-ASCII case
//! variants (`(?i)k` also matches the Kelvin sign) come out of the regex parser as
//! classes and are kept as separate literals.
//!
//! The walk is over `regex-syntax`'s HIR. For each node it knows the node's complete
//! set of strings when that set is small (`exact`), the strings every match starts
//! and ends with (`prefix`, `suffix`), and a list of sets every match must contain one
//! member of (`required`, a conjunction). Concatenations join exact runs with their
//! neighbours' suffix and prefix, which is how `ERROR .*SQLException` yields both
//! `error ` and `sqlexception`.

use regex_syntax::hir::{Class, Hir, HirKind};

/// Literals in a set, folded, sorted and without duplicates.
pub type LiteralSet = Vec<Vec<u8>>;

/// At most this many strings in one set: past it a set is dropped (or, for a
/// prefix, no longer extended), so cross products stay small.
const MAX_SET: usize = 64;
/// A class with more characters than this is "anything" to the walk.
const MAX_CLASS: usize = 16;
/// Repetitions `x{n}` up to this `n` are expanded into exact strings.
const MAX_EXACT_REPEAT: u32 = 4;
/// At most this many sets are kept in a conjunction, the best ones.
const MAX_REQUIRED: usize = 4;
/// A set whose shortest literal is shorter than this is too weak to search for.
pub const MIN_USEFUL_LEN: usize = 3;

/// What every match of a pattern must contain.
#[derive(Debug, Default)]
pub struct Requirement {
    /// Every match contains a member of each of these sets; best set first.
    pub sets: Vec<LiteralSet>,
}

impl Requirement {
    /// Computes the requirement of a parsed pattern, keeping only sets worth searching.
    pub fn of(hir: &Hir) -> Requirement {
        let mut sets: Vec<LiteralSet> = info(hir)
            .required
            .into_iter()
            .filter_map(|set| best_trim(&set))
            .collect();
        sets.sort_by_key(|set| std::cmp::Reverse(score(set)));
        sets.dedup();
        sets.truncate(MAX_REQUIRED);
        Requirement { sets }
    }

    /// The set to search the block for, if there is one worth searching.
    pub fn primary(&self) -> Option<&LiteralSet> {
        self.sets.first()
    }

    /// The other sets, checked on candidate lines before the regex runs.
    pub fn others(&self) -> &[LiteralSet] {
        self.sets.get(1..).unwrap_or(&[])
    }
}

/// ASCII-lowercases `bytes`, the folding both literals and haystack go through.
pub fn fold(bytes: &[u8]) -> Vec<u8> {
    bytes.to_ascii_lowercase()
}

/// What the walk knows about one node.
#[derive(Clone, Debug, Default)]
struct Info {
    exact: Option<LiteralSet>,
    prefix: Option<LiteralSet>,
    suffix: Option<LiteralSet>,
    required: Vec<LiteralSet>,
}

impl Info {
    fn exact(set: LiteralSet) -> Info {
        let usable = Some(set.clone()).filter(|set| !set.iter().any(Vec::is_empty));
        let required = usable.iter().cloned().collect();
        Info {
            exact: Some(set),
            prefix: usable.clone(),
            suffix: usable,
            required,
        }
    }

    /// A zero-width node: it matches the empty string and constrains nothing.
    fn empty() -> Info {
        Info {
            exact: Some(vec![Vec::new()]),
            ..Info::default()
        }
    }
}

fn info(hir: &Hir) -> Info {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Info::empty(),
        HirKind::Literal(literal) => Info::exact(vec![fold(&literal.0)]),
        HirKind::Class(class) => class_strings(class).map(Info::exact).unwrap_or_default(),
        HirKind::Capture(capture) => info(&capture.sub),
        HirKind::Repetition(rep) => {
            let sub = info(&rep.sub);
            let exact = match (rep.min, rep.max, &sub.exact) {
                (min, Some(max), Some(exact)) if min == max && min <= MAX_EXACT_REPEAT => {
                    (0..min).try_fold(vec![Vec::new()], |acc, _| product(&acc, exact))
                }
                (0, Some(1), Some(exact)) => union(&[exact.clone(), vec![Vec::new()]]),
                _ => None,
            };
            if rep.min == 0 {
                return Info {
                    exact,
                    ..Info::default()
                };
            }
            let mut required = sub.required;
            required.extend(exact.clone().filter(|set| !set.iter().any(Vec::is_empty)));
            Info {
                exact,
                prefix: sub.prefix,
                suffix: sub.suffix,
                required,
            }
        }
        HirKind::Concat(children) => concat(&children.iter().map(info).collect::<Vec<_>>()),
        HirKind::Alternation(branches) => {
            alternation(&branches.iter().map(info).collect::<Vec<_>>())
        }
    }
}

fn concat(children: &[Info]) -> Info {
    let exact = children.iter().try_fold(vec![Vec::new()], |acc, child| {
        product(&acc, child.exact.as_ref()?)
    });
    let prefix = edge(children.iter(), |child| child.prefix.as_ref(), product);
    let suffix = edge(
        children.iter().rev(),
        |child| child.suffix.as_ref(),
        |acc, next| product(next, acc),
    );

    let mut required: Vec<LiteralSet> = children
        .iter()
        .flat_map(|child| child.required.iter().cloned())
        .collect();
    // Each maximal run of exact children, joined to what must end just before it and
    // begin just after it: the "inner literals" of the concatenation.
    let mut i = 0;
    while i < children.len() {
        if children[i].exact.is_none() {
            i += 1;
            continue;
        }
        let start = i;
        let mut run = vec![Vec::new()];
        while let Some(next) = children.get(i).and_then(|child| child.exact.as_ref()) {
            match product(&run, next) {
                Some(joined) => run = joined,
                None => break,
            }
            i += 1;
        }
        let before = start
            .checked_sub(1)
            .and_then(|j| children[j].suffix.as_ref());
        let after = children.get(i).and_then(|child| child.prefix.as_ref());
        let widened = before
            .map_or(Some(run.clone()), |before| product(before, &run))
            .and_then(|set| after.map_or(Some(set.clone()), |after| product(&set, after)));
        required.extend([Some(run), widened].into_iter().flatten());
        i = i.max(start + 1);
    }
    required.extend(
        [exact.clone(), prefix.clone(), suffix.clone()]
            .into_iter()
            .flatten(),
    );
    required.retain(|set| !set.iter().any(Vec::is_empty));
    Info {
        exact,
        prefix,
        suffix,
        required,
    }
}

/// The strings every match of a concatenation starts with (walking `children` from
/// the left) or ends with (from the right): exact children are joined for as long as
/// the set stays small, and the first inexact child adds its own edge and stops.
fn edge<'a>(
    children: impl Iterator<Item = &'a Info>,
    edge_of: impl Fn(&'a Info) -> Option<&'a LiteralSet>,
    join: impl Fn(&LiteralSet, &LiteralSet) -> Option<LiteralSet>,
) -> Option<LiteralSet> {
    let mut acc: LiteralSet = vec![Vec::new()];
    for child in children {
        let (next, last) = match &child.exact {
            Some(exact) => (exact, false),
            None => match edge_of(child) {
                Some(edge) => (edge, true),
                None => break,
            },
        };
        match join(&acc, next) {
            Some(joined) => acc = joined,
            None => break,
        }
        if last {
            break;
        }
    }
    Some(acc).filter(|set| !set.iter().any(Vec::is_empty))
}

fn alternation(branches: &[Info]) -> Info {
    let all = |get: fn(&Info) -> Option<&LiteralSet>| {
        let sets: Option<Vec<LiteralSet>> = branches.iter().map(|b| get(b).cloned()).collect();
        sets.and_then(|sets| union(&sets))
    };
    let exact = all(|b| b.exact.as_ref());
    let prefix = all(|b| b.prefix.as_ref());
    let suffix = all(|b| b.suffix.as_ref());
    // Each branch contributes its best required set; the union of those is required.
    let best: Option<Vec<LiteralSet>> = branches
        .iter()
        .map(|b| b.required.iter().max_by_key(|set| score(set)).cloned())
        .collect();
    let required = best.and_then(|sets| union(&sets)).into_iter().collect();
    Info {
        exact,
        prefix,
        suffix,
        required,
    }
}

/// Every string of `left` followed by every string of `right`, if not too many.
fn product(left: &LiteralSet, right: &LiteralSet) -> Option<LiteralSet> {
    if left.len() * right.len() > MAX_SET {
        return None;
    }
    let mut out: LiteralSet = left
        .iter()
        .flat_map(|l| {
            right
                .iter()
                .map(move |r| [l.as_slice(), r.as_slice()].concat())
        })
        .collect();
    out.sort();
    out.dedup();
    Some(out)
}

fn union(sets: &[LiteralSet]) -> Option<LiteralSet> {
    let mut out: LiteralSet = sets.iter().flatten().cloned().collect();
    out.sort();
    out.dedup();
    (out.len() <= MAX_SET).then_some(out)
}

/// The folded strings of a small class, each character UTF-8 encoded.
fn class_strings(class: &Class) -> Option<LiteralSet> {
    let mut out = LiteralSet::new();
    match class {
        Class::Unicode(class) => {
            for range in class.ranges() {
                if out.len() + (range.end() as usize - range.start() as usize) >= MAX_CLASS {
                    return None;
                }
                for c in range.start()..=range.end() {
                    out.push(fold(c.encode_utf8(&mut [0; 4]).as_bytes()));
                }
            }
        }
        Class::Bytes(class) => {
            for range in class.ranges() {
                if out.len() + usize::from(range.end() - range.start()) >= MAX_CLASS {
                    return None;
                }
                out.extend((range.start()..=range.end()).map(|b| fold(&[b])));
            }
        }
    }
    out.sort();
    out.dedup();
    Some(out)
}

fn useful(set: &LiteralSet) -> bool {
    !set.is_empty() && set.iter().all(|literal| literal.len() >= MIN_USEFUL_LEN)
}

/// The best of a set and its trimmed forms, if any is useful. Every member's prefix of
/// a given length is itself a required set (weaker, but often much smaller): trimming
/// `segfault at [0-9a-f]` to `segfault at ` needs one literal, not sixteen.
fn best_trim(set: &LiteralSet) -> Option<LiteralSet> {
    let shortest = set.iter().map(Vec::len).min()?;
    let trims = (MIN_USEFUL_LEN..shortest).flat_map(|len| {
        let prefixes = set.iter().map(move |lit| lit[..len].to_vec());
        let suffixes = set.iter().map(move |lit| lit[lit.len() - len..].to_vec());
        [prefixes.collect::<Vec<_>>(), suffixes.collect()]
    });
    // The set itself comes last, so that it wins ties (`max_by_key` keeps the last).
    trims
        .map(|mut trimmed| {
            trimmed.sort();
            trimmed.dedup();
            trimmed
        })
        .chain(std::iter::once(set.clone()))
        .filter(useful)
        .max_by_key(score)
}

/// How selective a set is likely to be: its weakest literal's length, with bytes that
/// are rare in text (punctuation, upper half) counting more, less a price for every
/// doubling of the number of literals (each costs the search a little).
fn score(set: &LiteralSet) -> isize {
    let weight = |b: &u8| {
        if b.is_ascii_alphanumeric() || *b == b' ' {
            2
        } else {
            3
        }
    };
    let weakest = set
        .iter()
        .map(|lit| lit.iter().map(weight).sum::<isize>())
        .min()
        .unwrap_or(0);
    weakest - 2 * set.len().next_power_of_two().trailing_zeros() as isize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets(pattern: &str) -> Vec<Vec<String>> {
        let hir = regex_syntax::parse(pattern).unwrap();
        Requirement::of(&hir)
            .sets
            .into_iter()
            .map(|set| {
                set.into_iter()
                    .map(|lit| String::from_utf8(lit).unwrap())
                    .collect()
            })
            .collect()
    }

    fn primary(pattern: &str) -> Vec<String> {
        sets(pattern).into_iter().next().unwrap_or_default()
    }

    #[test]
    fn plain_literals_are_required_as_they_are_folded() {
        assert_eq!(primary(r"\bFATAL\b"), ["fatal"]);
        assert_eq!(
            primary(r"Traceback \(most recent call last\)"),
            ["traceback (most recent call last)"]
        );
        assert_eq!(primary(r"^panic:"), ["panic:"]);
    }

    #[test]
    fn case_insensitive_letters_keep_their_unicode_variants() {
        // (?i)s also matches U+017F LATIN SMALL LETTER LONG S.
        assert_eq!(primary("(?i)no space"), ["no space", "no \u{17f}pace"]);
        assert_eq!(
            primary("(?i)(out of memory|java\\.lang\\.OutOfMemoryError)"),
            ["java.lang.outofmemoryerror", "out of memory"]
        );
    }

    #[test]
    fn alternations_and_inner_literals() {
        assert_eq!(
            primary(r"\b(CRIT|CRITICAL|EMERG)\b"),
            ["crit", "critical", "emerg"]
        );
        let all = sets(r"ERROR .*(SQLException|could not connect to server)");
        assert!(all.contains(&vec!["error ".to_owned()]), "{all:?}");
        assert!(
            all.contains(&vec![
                "could not connect to server".to_owned(),
                "sqlexception".to_owned()
            ]),
            "{all:?}"
        );
        assert_eq!(primary(r"\bstatus=5\d{2}\b"), ["status=5"]);
    }

    #[test]
    fn nothing_is_required_where_nothing_can_be() {
        assert!(sets(r"\d+").is_empty());
        assert!(
            sets(r"(foo)?bar?").is_empty(),
            "`ba` is too short to be worth it"
        );
        assert!(sets(r"abc|.*").is_empty(), "one branch requires nothing");
        assert!(sets(r"(?:xyz)*").is_empty());
    }

    #[test]
    fn small_classes_expand_and_join_their_neighbours() {
        assert_eq!(primary(r"seg[fF]ault"), ["segfault"]);
        assert_eq!(
            primary(r"segfault at [0-9a-f]+"),
            ["segfault at "],
            "trimmed rather than sixteen literals"
        );
        assert_eq!(primary(r"x509: (has|had)"), ["x509: had", "x509: has"]);
    }
}
