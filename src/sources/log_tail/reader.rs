//! Reads one open log file into blocks of whole lines.
//!
//! A [`FileReader`] owns an open handle and the byte offset it has read to. Each
//! [`FileReader::read_block`] reads what the file has grown by since (up to a budget)
//! and returns the complete lines, keeping the unfinished last line for the next call,
//! so a line still being written is never split. It also enforces the line-length bound
//! (a longer line is kept up to the bound, the rest dropped until its end, and counted)
//! and valid UTF-8 (invalid sequences become U+FFFD, counted per line). It does no
//! waiting and reads no clock: the tailer decides when to read and what a rotation
//! means.
//!
//! Memory: a reader keeps only its unfinished last line (at most the line bound) and a
//! few hundred bytes of fingerprint; the buffer it reads into is lent by the caller for
//! the read and is the block sent downstream, without a copy in the common case. An
//! idle followed file costs its descriptor and well under a kilobyte.
//!
//! A reader also keeps a [`Fingerprint`] of what it has read (the file's first bytes,
//! and the last bytes before its offset), by which a copy of the file (logrotate's
//! `copytruncate`) or the file itself under another name can be recognised later.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

use bytes::{Bytes, BytesMut};

/// How many leading bytes of a file are remembered: to notice it being truncated and
/// rewritten (copytruncate) even when it has grown past the old offset by the time we
/// look again, and to recognise a copy of it.
const HEAD_BYTES: usize = 256;

/// How many bytes before the offset a fingerprint keeps: with the head, what tells a
/// copy of a file from another file that merely starts the same way (a banner).
const RECENT_BYTES: usize = 128;

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
    /// Resume after bytes already read, from this file or from another file whose
    /// copy this is.
    Offset(u64),
}

/// What was read of a file: its first bytes, where reading stopped, and the bytes just
/// before that. A file that holds the same bytes at both places holds what was read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fingerprint {
    head: Vec<u8>,
    recent: Vec<u8>,
    pub offset: u64,
}

impl Fingerprint {
    /// The first bytes of `file`, as many as a fingerprint compares: read once, they
    /// serve [`Fingerprint::matches`] for any number of fingerprints.
    pub fn read_head(file: &File) -> io::Result<Vec<u8>> {
        read_exactly_at(file, HEAD_BYTES, 0)
    }

    /// Whether `file`, `size` bytes long and beginning with `head` (from
    /// [`Fingerprint::read_head`]), holds what this fingerprint saw. A fingerprint of
    /// nothing read matches nothing: an empty file is no evidence.
    pub fn matches(&self, head: &[u8], file: &File, size: u64) -> io::Result<bool> {
        if self.head.is_empty() || !head.starts_with(&self.head) || size < self.offset {
            return Ok(false);
        }
        let recent_at = self.offset - self.recent.len() as u64;
        Ok(read_exactly_at(file, self.recent.len(), recent_at)? == self.recent)
    }

    /// Whether a file `size` bytes long and beginning with `head` may be a copy of
    /// this one still being written (a `copytruncate` caught mid-copy): it is not empty,
    /// shorter than what was read, and begins as this one does, as far as both go.
    pub fn may_be_growing_copy(&self, head: &[u8], size: u64) -> bool {
        !head.is_empty() && size < self.offset && self.head.starts_with(head)
    }
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
    /// The file was truncated or rewritten in place (copytruncate): reading starts over
    /// at offset 0. `partial` is the line that was unfinished before, as a line, and
    /// `read` what had been read of the old content up to that line's start, by which a
    /// copy of it is known.
    Restarted {
        partial: Option<Block>,
        read: Fingerprint,
    },
}

/// What to drop at the start of the next data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Skip {
    Nothing,
    /// The rest of a line that was cut at the bound (already emitted and counted).
    RestOfLongLine,
    /// The rest of a line that was half read when reading started (at the end of a
    /// file, or where another reader of the same content stopped).
    RestOfFirstLine,
}

#[derive(Debug)]
pub struct FileReader {
    file: File,
    identity: Identity,
    /// The offset read to, the file's first bytes (at most [`HEAD_BYTES`]) and the last
    /// bytes read (at most [`RECENT_BYTES`]).
    read: Fingerprint,
    /// Bytes after the last newline read: a line not finished yet.
    partial: Vec<u8>,
    skip: Skip,
    max_line: usize,
    /// Whether a cut line, a lossy line and a failed read of this file were logged
    /// already: each kind is logged once per file.
    logged_cut: bool,
    logged_lossy: bool,
    logged_error: bool,
}

impl FileReader {
    /// A reader of `file`, which the caller opened and checked to be a regular file.
    pub fn new(
        file: File,
        metadata: &std::fs::Metadata,
        start: Start,
        max_line: usize,
    ) -> io::Result<FileReader> {
        let size = metadata.len();
        let offset = match start {
            Start::Beginning => 0,
            Start::End => size,
            // A file now shorter than where reading stopped was truncated since.
            Start::Offset(offset) if offset > size => 0,
            Start::Offset(offset) => offset,
        };
        let mut reader = FileReader {
            file,
            identity: Identity::of(metadata),
            read: Fingerprint {
                head: Vec::new(),
                recent: Vec::new(),
                offset,
            },
            partial: Vec::new(),
            skip: Skip::Nothing,
            max_line,
            logged_cut: false,
            logged_lossy: false,
            logged_error: false,
        };
        reader.read.head =
            read_exactly_at(&reader.file, offset.min(HEAD_BYTES as u64) as usize, 0)?;
        let recent_len = offset.min(RECENT_BYTES as u64);
        reader.read.recent =
            read_exactly_at(&reader.file, recent_len as usize, offset - recent_len)?;
        // Starting after a line that is unfinished there: its rest is not a line.
        if reader.read.recent.last().is_some_and(|&last| last != b'\n') {
            reader.skip = Skip::RestOfFirstLine;
        }
        Ok(reader)
    }

    pub fn identity(&self) -> Identity {
        self.identity
    }

    pub fn offset(&self) -> u64 {
        self.read.offset
    }

    /// What has been read so far, to recognise this file's content elsewhere.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.read
    }

    /// Reads what the file has grown by, up to `budget` bytes, into `buffer` (empty;
    /// lent for the read), and returns the complete lines now available.
    ///
    /// The size is looked at before reading, so an idle file costs a `fstat` (and a
    /// look at its first bytes) and no read. The first bytes are looked at again after
    /// a read: a copytruncate can happen between any two reads, and then the old offset
    /// points into the middle of the new content. Checked afterwards, nothing read at a
    /// stale offset is passed on.
    pub fn read_block(&mut self, budget: usize, buffer: &mut BytesMut) -> io::Result<ReadOutcome> {
        debug_assert!(buffer.is_empty());
        let size = self.file.metadata()?.len();
        if size <= self.read.offset {
            if self.rewritten(size)? {
                return Ok(self.restart());
            }
            return Ok(ReadOutcome::Lines {
                block: None,
                at_end: true,
            });
        }
        let want = (size - self.read.offset).min(budget.max(1) as u64) as usize;
        let needed = self.partial.len() + want;
        if buffer.capacity() < needed {
            // Exactly what this read needs: a live log grows by a few lines at a time,
            // and a bulk read asks for its whole budget.
            *buffer = BytesMut::with_capacity(needed);
        }
        buffer.extend_from_slice(&self.partial);
        let start = buffer.len();
        buffer.resize(start + want, 0);
        let read = match read_at(&self.file, &mut buffer[start..], self.read.offset) {
            Ok(read) => read,
            Err(err) => {
                buffer.clear();
                return Err(err);
            }
        };
        buffer.truncate(start + read);
        if self.rewritten(self.read.offset + read as u64)? {
            buffer.clear();
            return Ok(self.restart());
        }
        self.read.offset += read as u64;
        remember_recent(&mut self.read.recent, &buffer[start..]);
        if self.read.head.len() < HEAD_BYTES && self.read.offset > self.read.head.len() as u64 {
            let len = self.read.offset.min(HEAD_BYTES as u64) as usize;
            self.read.head = read_exactly_at(&self.file, len, 0)?;
        }
        self.partial.clear();
        let block = self.take_lines(buffer);
        Ok(ReadOutcome::Lines {
            block,
            at_end: read < want || self.read.offset >= size,
        })
    }

    /// Whether the file, now `size` bytes long, is shorter than what was read from it,
    /// or its first bytes are not the ones remembered.
    fn rewritten(&self, size: u64) -> io::Result<bool> {
        if size < self.read.offset {
            return Ok(true);
        }
        let head = &self.read.head;
        let mut now = [0; HEAD_BYTES];
        let read = read_at(&self.file, &mut now[..head.len()], 0)?;
        Ok(now[..read] != head[..])
    }

    /// Starts over at offset 0, flushing the unfinished line. What had been read is
    /// handed over up to the start of that line: a copy made before the truncation
    /// holds the whole line, and is read from there.
    fn restart(&mut self) -> ReadOutcome {
        let mut read = self.read.clone();
        if self.skip == Skip::Nothing {
            // The unfinished line is the last of the bytes read, so the last of those
            // remembered.
            let unfinished = self.partial.len();
            read.offset -= unfinished as u64;
            read.recent
                .truncate(read.recent.len().saturating_sub(unfinished));
        }
        let partial = self.flush_partial();
        self.read.offset = 0;
        self.skip = Skip::Nothing;
        self.read.head.clear();
        self.read.recent.clear();
        ReadOutcome::Restarted { partial, read }
    }

    /// Cuts the complete lines out of `data` (the unfinished line kept before, then
    /// what was just read), applying the bound and UTF-8 checks; what follows the last
    /// newline is kept as the unfinished line. Leaves `data` empty.
    fn take_lines(&mut self, data: &mut BytesMut) -> Option<Block> {
        let mut cut_rest = 0;
        if self.skip != Skip::Nothing {
            match memchr::memchr(b'\n', data) {
                Some(end) => {
                    let _ = data.split_to(end + 1);
                    self.skip = Skip::Nothing;
                }
                None => {
                    data.clear();
                    return None;
                }
            }
        }
        let complete = match memchr::memrchr(b'\n', data) {
            Some(last) => data.split_to(last + 1),
            None => BytesMut::new(),
        };
        // A partial line already past the bound will be cut anyway: emit the kept part
        // now rather than keep a line of unbounded length.
        let mut overlong = None;
        if data.len() > self.max_line {
            let keep = char_boundary(data, self.max_line);
            overlong = Some(data.split_to(keep));
            self.skip = Skip::RestOfLongLine;
            cut_rest = 1;
        } else {
            self.partial.extend_from_slice(data);
        }
        data.clear();
        if complete.is_empty() && overlong.is_none() {
            return None;
        }
        Some(finish_block(complete, overlong, self.max_line, cut_rest))
    }

    /// Logs the first cut line and the first lossy line of the file; later ones are
    /// only counted (in the block, and from there in metrics).
    pub fn log_first_problems(&mut self, name: &str, block: &Block) {
        let name = crate::base::text::Escaped(name);
        if block.cut > 0 && !std::mem::replace(&mut self.logged_cut, true) {
            tracing::warn!(
                path = %name,
                max_line_bytes = self.max_line,
                "Line longer than max_line_bytes, cut to it; further ones are counted, not logged."
            );
        }
        if block.lossy > 0 && !std::mem::replace(&mut self.logged_lossy, true) {
            tracing::warn!(
                path = %name,
                "Line with invalid UTF-8, decoded with replacement characters; further ones are counted, not logged."
            );
        }
    }

    /// Logs a failed read, the first time: it is tried again on every poll, and an
    /// error that lasts (a disk gone bad) would otherwise fill the log.
    pub fn log_read_error(&mut self, name: &str, error: &io::Error) {
        if !std::mem::replace(&mut self.logged_error, true) {
            tracing::warn!(path = %crate::base::text::Escaped(name), %error, "Cannot read the file; trying again on every change.");
        }
    }

    /// The unfinished last line, as a line: for the end of a file that will not grow
    /// (end of `--once`, a rotated file drained, shutdown).
    pub fn flush_partial(&mut self) -> Option<Block> {
        if self.partial.is_empty() || self.skip != Skip::Nothing {
            self.partial.clear();
            return None;
        }
        let mut data = BytesMut::with_capacity(self.partial.len() + 1);
        data.extend_from_slice(&self.partial);
        data.extend_from_slice(b"\n");
        self.partial.clear();
        self.take_lines(&mut data)
    }

    /// Gives back the memory of a long unfinished line once it is gone.
    pub fn shrink(&mut self) {
        if self.partial.is_empty() {
            self.partial = Vec::new();
        }
    }
}

/// Reads into `buffer` at `offset` until it is full or the file ends; returns how many
/// bytes were read.
fn read_at(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read_at(&mut buffer[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// The `len` bytes at `offset` (fewer if the file ends first).
fn read_exactly_at(file: &File, len: usize, offset: u64) -> io::Result<Vec<u8>> {
    let mut bytes = vec![0; len];
    let read = read_at(file, &mut bytes, offset)?;
    bytes.truncate(read);
    Ok(bytes)
}

/// Keeps the last [`RECENT_BYTES`] of what was read, `read` being the newest.
fn remember_recent(recent: &mut Vec<u8>, read: &[u8]) {
    if read.len() >= RECENT_BYTES {
        recent.clear();
        recent.extend_from_slice(&read[read.len() - RECENT_BYTES..]);
    } else {
        recent.extend_from_slice(read);
        let excess = recent.len().saturating_sub(RECENT_BYTES);
        recent.drain(..excess);
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
    use std::io::{Seek, SeekFrom, Write};

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

    fn open(path: &std::path::Path, start: Start, max_line: usize) -> FileReader {
        let file = File::open(path).unwrap();
        let metadata = file.metadata().unwrap();
        FileReader::new(file, &metadata, start, max_line).unwrap()
    }

    fn read(reader: &mut FileReader) -> Option<Block> {
        match reader.read_block(1 << 16, &mut BytesMut::new()).unwrap() {
            ReadOutcome::Lines { block, .. } => block,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn text(block: Option<Block>) -> String {
        String::from_utf8(block.map(|b| b.text.to_vec()).unwrap_or_default()).unwrap()
    }

    #[test]
    fn a_partial_line_waits_for_its_end() {
        let mut f = fixture(b"one\ntw");
        let mut reader = open(&f.path, Start::Beginning, 100);
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
    fn small_reads_take_small_buffers_without_mixing_them() {
        let mut f = fixture(b"");
        let mut reader = open(&f.path, Start::Beginning, 100);
        let mut buffer = BytesMut::new();
        let mut blocks = Vec::new();
        for n in 0..50 {
            writeln!(f.writer, "line {n}").unwrap();
            let ReadOutcome::Lines { block, at_end } =
                reader.read_block(1 << 20, &mut buffer).unwrap()
            else {
                panic!("no restart")
            };
            assert!(at_end);
            blocks.push(block.unwrap().text);
        }
        for (n, text) in blocks.iter().enumerate() {
            assert_eq!(&text[..], format!("line {n}\n").as_bytes());
        }
        assert!(
            buffer.capacity() < 64,
            "each read took what it needed: {}",
            buffer.capacity()
        );
    }

    #[test]
    fn long_lines_are_cut_at_the_bound_and_counted() {
        let long = "x".repeat(25);
        let mut f = fixture(format!("short\n{long}\nok\n").as_bytes());
        let mut reader = open(&f.path, Start::Beginning, 10);
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
        let mut reader = open(&f.path, Start::Beginning, 100);
        let block = read(&mut reader).unwrap();
        assert_eq!(
            std::str::from_utf8(&block.text).unwrap(),
            "fine\nbad \u{fffd}\u{fffd} here\nalso \u{fffd} bad\n"
        );
        assert_eq!((block.lines, block.lossy), (3, 2));
    }

    #[test]
    fn starting_mid_line_skips_the_rest_of_that_line() {
        let mut f = fixture(b"old\nhalf");
        let mut reader = open(&f.path, Start::End, 100);
        f.writer.write_all(b" done\nnew\n").unwrap();
        assert_eq!(text(read(&mut reader)), "new\n");
        let mut resumed = open(&f.path, Start::Offset(6), 100);
        assert_eq!(text(read(&mut resumed)), "new\n", "from inside `half done`");
        let mut resumed = open(&f.path, Start::Offset(4), 100);
        assert_eq!(
            text(read(&mut resumed)),
            "half done\nnew\n",
            "at a line start"
        );
    }

    #[test]
    fn truncation_and_rewrite_in_place_are_noticed() {
        let mut f = fixture(b"first line of the old file\nhalf");
        let mut reader = open(&f.path, Start::Beginning, 100);
        assert_eq!(text(read(&mut reader)), "first line of the old file\n");
        let before = reader.fingerprint().clone();

        // copytruncate, then the writer goes on past the old size before we look: the
        // read at the old offset would land mid-line in the new content.
        f.writer.set_len(0).unwrap();
        f.writer.seek(SeekFrom::Start(0)).unwrap();
        f.writer
            .write_all(b"another line, longer than the first one was\n")
            .unwrap();
        let restarted = reader.read_block(1 << 16, &mut BytesMut::new()).unwrap();
        let ReadOutcome::Restarted { partial, read: old } = restarted else {
            panic!("{restarted:?}")
        };
        assert_eq!(
            text(partial),
            "half\n",
            "the unfinished line read before is kept"
        );
        assert_eq!(
            (old.offset, &old.head),
            (before.offset - 4, &before.head),
            "what had been read is handed over, to the unfinished line's start"
        );
        assert_eq!(
            text(read(&mut reader)),
            "another line, longer than the first one was\n"
        );

        // Truncated to less than was read: noticed as well.
        f.writer.set_len(5).unwrap();
        assert!(matches!(
            reader.read_block(1 << 16, &mut BytesMut::new()).unwrap(),
            ReadOutcome::Restarted { partial: None, .. }
        ));
    }

    #[test]
    fn a_fingerprint_knows_a_copy_and_not_a_file_that_only_starts_the_same() {
        let f = fixture(b"banner line\nfirst\nsecond\n");
        let mut reader = open(&f.path, Start::Beginning, 100);
        read(&mut reader);
        let seen = reader.fingerprint().clone();
        let dir = f.path.parent().unwrap();
        let candidate = |name: &str, content: &[u8]| {
            let path = dir.join(name);
            std::fs::write(&path, content).unwrap();
            let file = File::open(&path).unwrap();
            let size = file.metadata().unwrap().len();
            let head = Fingerprint::read_head(&file).unwrap();
            seen.matches(&head, &file, size).unwrap()
        };
        assert!(candidate("copy", b"banner line\nfirst\nsecond\n"));
        assert!(candidate(
            "grown copy",
            b"banner line\nfirst\nsecond\nthird\n"
        ));
        assert!(!candidate("same banner", b"banner line\nother\nlines!\n"));
        assert!(!candidate("shorter", b"banner line\n"));
        let file = File::open(&f.path).unwrap();
        let head = Fingerprint::read_head(&file).unwrap();
        assert!(!Fingerprint::default().matches(&head, &file, 20).unwrap());
    }

    #[test]
    fn long_line_search_finds_exactly_the_lines_over_the_bound() {
        assert!(!has_long_line(b"aaa\nbbbb\n", 4));
        assert!(has_long_line(b"aaa\nbbbbb\n", 4));
        assert!(!has_long_line(b"", 1));
        assert_eq!(char_boundary("aé".as_bytes(), 2), 1);
    }
}
