//! Reads one open log file into blocks of whole lines.
//!
//! A [`FileReader`] owns an open handle and the byte offset it has read to. Each
//! [`FileReader::read_block`] reads once, returns the complete lines read so far and
//! keeps the partial last line for the next call, so a line still being written is
//! never split. It also enforces the line-length bound (a longer line is kept up to
//! the bound, the rest dropped until its end, and counted) and valid UTF-8 (invalid
//! sequences become U+FFFD, counted per line). It does no waiting and reads no clock:
//! the tailer decides when to read and what a rotation means.
//!
//! The common case costs no copy: the block is a frozen slice of the read buffer.
//! Only a block with an over-long line or invalid UTF-8 is rebuilt.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use bytes::{Bytes, BytesMut};

/// How many leading bytes of a file are remembered to notice it being truncated and
/// rewritten (copytruncate) even when it has grown past the old offset by the time we
/// look again.
const HEAD_BYTES: usize = 256;

/// Which file this is, independent of its name: it survives renames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    device: u64,
    inode: u64,
}

impl Identity {
    pub fn of(metadata: &std::fs::Metadata) -> Identity {
        Identity {
            device: metadata.dev(),
            inode: metadata.ino(),
        }
    }
}

/// Where a newly opened file is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    Beginning,
    End,
    /// A file seen before (under another name): resume where reading stopped.
    Offset(u64),
}

/// Complete lines read from a file, with the tail's invariants (see `LogLines`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Block {
    pub text: Bytes,
    pub lines: u32,
    pub cut: u32,
    pub lossy: u32,
}

/// What one [`FileReader::read_block`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// The complete lines now available, if any, and whether the read reached the end
    /// of the file.
    Lines { block: Option<Block>, at_end: bool },
    /// The file was truncated or rewritten in place (copytruncate): what was just read
    /// is dropped, reading starts over at offset 0, and `partial` is the line that was
    /// unfinished before, as a line.
    Restarted { partial: Option<Block> },
}

/// What to drop at the start of the next data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Skip {
    Nothing,
    /// The rest of a line that was cut at the bound (already emitted and counted).
    RestOfLongLine,
    /// The rest of a line that was half written when reading started at the end.
    RestOfFirstLine,
}

#[derive(Debug)]
pub struct FileReader {
    file: File,
    identity: Identity,
    offset: u64,
    /// Bytes after the last newline read: a line not finished yet.
    pending: BytesMut,
    skip: Skip,
    /// The first bytes of the file as read, at most [`HEAD_BYTES`].
    head: Vec<u8>,
    max_line: usize,
    /// Whether a cut line, and a lossy line, of this file were logged already: each
    /// kind is logged once per file and counted always.
    logged_cut: bool,
    logged_lossy: bool,
}

impl FileReader {
    pub fn open(path: &Path, start: Start, max_line: usize) -> io::Result<FileReader> {
        let mut file = File::open(path)?;
        let metadata = file.metadata()?;
        let size = metadata.len();
        let offset = match start {
            Start::Beginning => 0,
            Start::End => size,
            Start::Offset(offset) => offset.min(size),
        };
        file.seek(SeekFrom::Start(offset))?;
        let mut reader = FileReader {
            file,
            identity: Identity::of(&metadata),
            offset,
            pending: BytesMut::new(),
            skip: Skip::Nothing,
            head: Vec::new(),
            max_line,
            logged_cut: false,
            logged_lossy: false,
        };
        reader.head = reader.read_head(offset.min(HEAD_BYTES as u64) as usize)?;
        // Starting at the end of a file whose last line is unfinished: its rest is not
        // a line of its own.
        if start == Start::End && offset > 0 {
            let mut last = [0];
            reader.file.read_exact_at(&mut last, offset - 1)?;
            if last[0] != b'\n' {
                reader.skip = Skip::RestOfFirstLine;
            }
        }
        Ok(reader)
    }

    pub fn identity(&self) -> Identity {
        self.identity
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The remembered first bytes of the file.
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// Reads up to `budget` bytes and returns the complete lines now available.
    ///
    /// The check for a truncation comes *after* the read: a copytruncate can happen
    /// between any two reads, and then the old offset points into the middle of the new
    /// content. Checked afterwards, nothing read at a stale offset is passed on: the
    /// file is shorter than what was read, or its first bytes changed.
    pub fn read_block(&mut self, budget: usize) -> io::Result<ReadOutcome> {
        let kept = self.pending.len();
        self.pending.resize(kept + budget, 0);
        let read = match self.file.read(&mut self.pending[kept..]) {
            Ok(read) => read,
            Err(err) => {
                self.pending.truncate(kept);
                return Err(err);
            }
        };
        self.pending.truncate(kept + read);
        self.offset += read as u64;
        if self.rewritten()? {
            self.pending.truncate(kept);
            let partial = self.flush_partial();
            self.file.seek(SeekFrom::Start(0))?;
            self.offset = 0;
            self.skip = Skip::Nothing;
            self.head.clear();
            return Ok(ReadOutcome::Restarted { partial });
        }
        if self.head.len() < HEAD_BYTES && self.offset > self.head.len() as u64 {
            self.head = self.read_head(self.offset.min(HEAD_BYTES as u64) as usize)?;
        }
        Ok(ReadOutcome::Lines {
            block: self.take_lines(),
            at_end: read == 0,
        })
    }

    /// Whether the file is shorter than what was read from it, or its first bytes are
    /// not the ones remembered.
    fn rewritten(&self) -> io::Result<bool> {
        let size = self.file.metadata()?.len();
        Ok(size < self.offset
            || (!self.head.is_empty() && self.read_head(self.head.len())? != self.head))
    }

    /// Cuts the complete lines out of `pending`, applying the bound and UTF-8 checks.
    fn take_lines(&mut self) -> Option<Block> {
        let mut cut_rest = 0;
        if self.skip != Skip::Nothing {
            match memchr::memchr(b'\n', &self.pending) {
                Some(end) => {
                    let _ = self.pending.split_to(end + 1);
                    self.skip = Skip::Nothing;
                }
                None => {
                    self.pending.clear();
                    return None;
                }
            }
        }
        let complete = match memchr::memrchr(b'\n', &self.pending) {
            Some(last) => self.pending.split_to(last + 1),
            None => BytesMut::new(),
        };
        // A partial line already past the bound will be cut anyway: emit the kept part
        // now rather than buffer a line of unbounded length.
        let mut overlong = None;
        if self.pending.len() > self.max_line {
            let keep = char_boundary(&self.pending, self.max_line);
            overlong = Some(self.pending.split_to(keep));
            self.pending.clear();
            self.skip = Skip::RestOfLongLine;
            cut_rest = 1;
        }
        if complete.is_empty() && overlong.is_none() {
            return None;
        }
        Some(finish_block(complete, overlong, self.max_line, cut_rest))
    }

    /// Logs the first cut line and the first lossy line of the file; later ones are
    /// only counted (in the block, and from there in metrics).
    pub fn log_first_problems(&mut self, name: &str, block: &Block) {
        if block.cut > 0 && !std::mem::replace(&mut self.logged_cut, true) {
            tracing::warn!(
                path = name,
                max_line_bytes = self.max_line,
                "Line longer than max_line_bytes, cut to it; further ones are counted, not logged."
            );
        }
        if block.lossy > 0 && !std::mem::replace(&mut self.logged_lossy, true) {
            tracing::warn!(
                path = name,
                "Line with invalid UTF-8, decoded with replacement characters; further ones are counted, not logged."
            );
        }
    }

    /// The unfinished last line, as a line: for the end of a file that will not grow
    /// (end of `--once`, a rotated file drained, shutdown).
    pub fn flush_partial(&mut self) -> Option<Block> {
        if self.pending.is_empty() || self.skip != Skip::Nothing {
            self.pending.clear();
            return None;
        }
        self.pending.extend_from_slice(b"\n");
        self.take_lines()
    }

    fn read_head(&self, len: usize) -> io::Result<Vec<u8>> {
        let mut head = vec![0; len];
        let mut filled = 0;
        while filled < len {
            match self.file.read_at(&mut head[filled..], filled as u64)? {
                0 => break,
                n => filled += n,
            }
        }
        head.truncate(filled);
        Ok(head)
    }
}

/// Turns whole lines (and possibly the kept part of an over-long partial line) into a
/// block: cuts lines over `max_line`, repairs invalid UTF-8, counts.
fn finish_block(
    complete: BytesMut,
    overlong: Option<BytesMut>,
    max_line: usize,
    mut cut: u32,
) -> Block {
    let mut text = if has_long_line(&complete, max_line) {
        let mut shortened = BytesMut::with_capacity(complete.len());
        for line in complete.split_inclusive(|&b| b == b'\n') {
            let body = &line[..line.len() - 1];
            if body.len() > max_line {
                shortened.extend_from_slice(&body[..char_boundary(body, max_line)]);
                shortened.extend_from_slice(b"\n");
                cut += 1;
            } else {
                shortened.extend_from_slice(line);
            }
        }
        shortened
    } else {
        complete
    };
    if let Some(kept) = overlong {
        text.extend_from_slice(&kept);
        text.extend_from_slice(b"\n");
    }
    let (text, lossy) = repair_utf8(text);
    let lines = bytecount::count(&text, b'\n') as u32;
    Block {
        text,
        lines,
        cut,
        lossy,
    }
}

/// Whether some line of `text` (whole lines) is longer than `max_line`, without
/// visiting every line: from each line start, the last newline within the next
/// `max_line + 1` bytes is searched for backwards, which skips many short lines at a
/// time; finding none means the line from that start is too long.
fn has_long_line(text: &[u8], max_line: usize) -> bool {
    let mut start = 0;
    while text.len() - start > max_line {
        match memchr::memrchr(b'\n', &text[start..start + max_line + 1]) {
            Some(newline) => start += newline + 1,
            None => return true,
        }
    }
    false
}

/// The largest index ≤ `at` that does not split a UTF-8 sequence.
fn char_boundary(text: &[u8], at: usize) -> usize {
    let mut at = at.min(text.len());
    // Step back over at most three continuation bytes (10xxxxxx).
    for _ in 0..3 {
        if at == 0 || at == text.len() || text[at] & 0xC0 != 0x80 {
            break;
        }
        at -= 1;
    }
    at
}

/// The text as valid UTF-8 (invalid sequences replaced), and how many lines had to
/// be repaired.
fn repair_utf8(text: BytesMut) -> (Bytes, u32) {
    if std::str::from_utf8(&text).is_ok() {
        return (text.freeze(), 0);
    }
    let mut repaired = String::with_capacity(text.len() + 16);
    let mut lossy = 0;
    for line in text.split_inclusive(|&b| b == b'\n') {
        match std::str::from_utf8(line) {
            Ok(line) => repaired.push_str(line),
            Err(_) => {
                repaired.push_str(&String::from_utf8_lossy(line));
                lossy += 1;
            }
        }
    }
    (Bytes::from(repaired), lossy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    struct Fixture {
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
        writer: File,
    }

    fn fixture(initial: &[u8]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let mut writer = File::create(&path).unwrap();
        writer.write_all(initial).unwrap();
        Fixture {
            _dir: dir,
            path,
            writer,
        }
    }

    fn read(reader: &mut FileReader) -> Option<Block> {
        match reader.read_block(1 << 16).unwrap() {
            ReadOutcome::Lines { block, .. } => block,
            ReadOutcome::Restarted { .. } => panic!("unexpected restart"),
        }
    }

    fn text(block: Option<Block>) -> String {
        String::from_utf8(block.map(|b| b.text.to_vec()).unwrap_or_default()).unwrap()
    }

    #[test]
    fn a_partial_line_waits_for_its_end() {
        let mut f = fixture(b"one\ntw");
        let mut reader = FileReader::open(&f.path, Start::Beginning, 100).unwrap();
        assert_eq!(text(read(&mut reader)), "one\n");
        assert_eq!(read(&mut reader), None);
        f.writer.write_all(b"o\r\nthree").unwrap();
        let block = read(&mut reader).unwrap();
        assert_eq!((&block.text[..], block.lines), (&b"two\r\n"[..], 1));
        assert_eq!(
            text(reader.flush_partial()),
            "three\n",
            "a final line without newline is a line"
        );
    }

    #[test]
    fn long_lines_are_cut_at_the_bound_and_counted() {
        let long = "x".repeat(25);
        let mut f = fixture(format!("short\n{long}\nok\n").as_bytes());
        let mut reader = FileReader::open(&f.path, Start::Beginning, 10).unwrap();
        let block = read(&mut reader).unwrap();
        assert_eq!(
            std::str::from_utf8(&block.text).unwrap(),
            "short\nxxxxxxxxxx\nok\n"
        );
        assert_eq!((block.lines, block.cut), (3, 1));

        // A long line still being written is cut without buffering it whole.
        f.writer.write_all("é".repeat(30).as_bytes()).unwrap();
        let block = read(&mut reader).unwrap();
        assert_eq!(
            std::str::from_utf8(&block.text).unwrap(),
            "ééééé\n",
            "cut at a character boundary"
        );
        assert_eq!(block.cut, 1);
        f.writer.write_all(b"still the same line\nnext\n").unwrap();
        assert_eq!(text(read(&mut reader)), "next\n");
    }

    #[test]
    fn invalid_utf8_is_replaced_and_counted_per_line() {
        let f = fixture(b"fine\nbad \xff\xfe here\nalso \xc3 bad\n");
        let mut reader = FileReader::open(&f.path, Start::Beginning, 100).unwrap();
        let block = read(&mut reader).unwrap();
        assert_eq!(
            std::str::from_utf8(&block.text).unwrap(),
            "fine\nbad \u{fffd}\u{fffd} here\nalso \u{fffd} bad\n"
        );
        assert_eq!((block.lines, block.lossy), (3, 2));
    }

    #[test]
    fn starting_at_the_end_skips_the_unfinished_line() {
        let mut f = fixture(b"old\nhalf");
        let mut reader = FileReader::open(&f.path, Start::End, 100).unwrap();
        f.writer.write_all(b" done\nnew\n").unwrap();
        assert_eq!(text(read(&mut reader)), "new\n");
    }

    #[test]
    fn truncation_and_rewrite_in_place_are_noticed() {
        let mut f = fixture(b"first line of the old file\nhalf");
        let mut reader = FileReader::open(&f.path, Start::Beginning, 100).unwrap();
        assert_eq!(text(read(&mut reader)), "first line of the old file\n");

        // copytruncate, then the writer goes on past the old size before we look: the
        // read at the old offset lands mid-line in the new content and is dropped.
        f.writer.set_len(0).unwrap();
        f.writer.seek(SeekFrom::Start(0)).unwrap();
        f.writer
            .write_all(b"another line, longer than the first one was\n")
            .unwrap();
        let restarted = reader.read_block(1 << 16).unwrap();
        let ReadOutcome::Restarted { partial } = restarted else {
            panic!("{restarted:?}")
        };
        assert_eq!(
            text(partial),
            "half\n",
            "the unfinished line read before is kept"
        );
        assert_eq!(
            text(read(&mut reader)),
            "another line, longer than the first one was\n"
        );

        // Truncated to less than was read: noticed as well.
        f.writer.set_len(5).unwrap();
        assert!(matches!(
            reader.read_block(1 << 16).unwrap(),
            ReadOutcome::Restarted { partial: None }
        ));
    }

    #[test]
    fn long_line_search_finds_exactly_the_lines_over_the_bound() {
        assert!(!has_long_line(b"aaa\nbbbb\n", 4));
        assert!(has_long_line(b"aaa\nbbbbb\n", 4));
        assert!(!has_long_line(b"", 1));
        assert_eq!(char_boundary("aé".as_bytes(), 2), 1);
    }
}
