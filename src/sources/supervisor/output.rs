//! A supervised process's output file: its standard output and error, whole lines at a
//! time, rotated by size.
//!
//! Lines, not reads: two streams written into one file would otherwise mix halves of
//! lines. A stream's unfinished line waits for its end (up to [`LINE_LIMIT`], past
//! which it is written as it is), and is written when the stream closes, so a crash's
//! last words are kept. Rotation renames (`PATH` → `PATH.1` → … → `PATH.KEEP`, the
//! oldest dropped) before a write would take the file past `max_bytes`, and opens a
//! new `PATH`: a rename that a `log_tail` follows without losing a line.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncRead, AsyncReadExt};

/// An unfinished line longer than this is written as it is.
const LINE_LIMIT: usize = 64 * 1024;

/// The output file of one supervised service, shared by its two streams.
#[derive(Clone)]
pub struct OutputLog(Arc<Mutex<OutputFile>>);

struct OutputFile {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    /// Open from the first write on; closed while the process is not running.
    file: Option<File>,
    size: u64,
    /// Whether a write failure was logged, so that it is logged once.
    failing: bool,
}

impl OutputLog {
    pub fn new(path: PathBuf, max_bytes: u64, keep: u32) -> OutputLog {
        OutputLog(Arc::new(Mutex::new(OutputFile {
            path,
            max_bytes,
            keep,
            file: None,
            size: 0,
            failing: false,
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OutputFile> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Copies `stream` to the file until it ends, a line at a time.
    pub async fn copy(&self, mut stream: impl AsyncRead + Unpin) {
        let mut pending: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            let n = match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            pending.extend_from_slice(&chunk[..n]);
            let whole = match memchr::memrchr(b'\n', &pending) {
                Some(end) => end + 1,
                None if pending.len() >= LINE_LIMIT => pending.len(),
                None => continue,
            };
            self.write(&pending[..whole]);
            pending.drain(..whole);
        }
        if !pending.is_empty() {
            pending.push(b'\n');
            self.write(&pending);
        }
    }

    /// Writes `text`, rotating first if it would take the file past its bound. A
    /// failure is logged once (until a write succeeds again); the text is dropped,
    /// never held: the process must not stall on a full disk.
    fn write(&self, text: &[u8]) {
        let mut output = self.lock();
        match output.append(text) {
            Ok(()) => output.failing = false,
            Err(err) => {
                if !std::mem::replace(&mut output.failing, true) {
                    tracing::warn!(path = %output.path.display(), error = %err, "Cannot write the supervised process's output; it is dropped until writing works again.");
                }
                output.file = None;
            }
        }
    }

    /// Closes the file, so that an idle service holds no descriptor.
    pub fn close(&self) {
        self.lock().file = None;
    }
}

impl OutputFile {
    fn append(&mut self, text: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            self.open()?;
        }
        if self.size > 0 && self.size + text.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        let file = self.file.as_mut().expect("opened above");
        file.write_all(text)?;
        self.size += text.len() as u64;
        Ok(())
    }

    fn open(&mut self) -> io::Result<()> {
        if let Some(folder) = self.path.parent() {
            fs::create_dir_all(folder)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = file.metadata()?.len();
        self.file = Some(file);
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        for n in (1..self.keep).rev() {
            let from = numbered(&self.path, n);
            if from.exists() {
                fs::rename(&from, numbered(&self.path, n + 1))?;
            }
        }
        fs::rename(&self.path, numbered(&self.path, 1))?;
        self.open()
    }
}

/// `PATH.n`.
fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap_or_default()
    }

    #[tokio::test]
    async fn lines_from_two_streams_are_never_mixed_and_a_last_unfinished_line_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let log = OutputLog::new(dir.path().join("out/app.log"), 1 << 20, 2);
        let out: &[u8] = b"one\ntw";
        log.copy(out).await;
        let err: &[u8] = b"error\n";
        log.copy(err).await;
        assert_eq!(read(&dir.path().join("out/app.log")), "one\ntw\nerror\n");
    }

    #[tokio::test]
    async fn the_file_is_rotated_before_it_grows_past_its_bound_keeping_so_many() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let log = OutputLog::new(path.clone(), 10, 2);
        for line in ["aaaa\n", "bbbb\n", "cccc\n", "dddd\n", "eeee\n"] {
            log.copy(line.as_bytes()).await;
        }
        assert_eq!(read(&path), "eeee\n");
        assert_eq!(read(&numbered(&path, 1)), "cccc\ndddd\n");
        assert_eq!(read(&numbered(&path, 2)), "aaaa\nbbbb\n");
        assert!(!numbered(&path, 3).exists());
    }
}
