//! What is at a path, and whether it can be followed: only regular files with honest
//! sizes can.
//!
//! A glob can match anything a folder holds, and a configured path can be replaced by
//! anything. Opening a FIFO blocks until a writer comes; reading a directory fails; a
//! device never ends; a file on procfs or sysfs reports size 0 while it has content, so
//! a tail that trusts sizes either reads nothing or takes every read for a truncation.
//! Each such path is skipped deliberately, with its reason, which the tailer logs once.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why a path is not followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unfollowable {
    Directory,
    Fifo,
    Socket,
    Device,
    SymlinkLoop,
    /// A file of a pseudo-filesystem (its name), whose sizes say nothing of content.
    PseudoFilesystem(&'static str),
    /// A regular file that says it is empty and yet has content.
    NoSize,
}

impl Unfollowable {
    /// Why, in words, for the warning.
    pub fn reason(self) -> String {
        match self {
            Unfollowable::Directory => "it is a directory".into(),
            Unfollowable::Fifo => {
                "it is a FIFO (named pipe), which has no offsets to resume from".into()
            }
            Unfollowable::Socket => "it is a socket".into(),
            Unfollowable::Device => "it is a device, which never ends".into(),
            Unfollowable::SymlinkLoop => "its symbolic links form a loop".into(),
            Unfollowable::PseudoFilesystem(name) => {
                format!("it is on {name}, whose files report no size for their content")
            }
            Unfollowable::NoSize => "it reports size 0 but has content".into(),
        }
    }
}

/// What a path names now.
pub enum Found {
    /// A regular file, with its metadata (following symbolic links).
    File(Metadata),
    Missing,
    Unfollowable(Unfollowable),
    /// It cannot be looked at (permission denied on a folder, say).
    Failed(io::Error),
}

/// Looks at `path`, following symbolic links.
pub fn inspect(path: &Path) -> Found {
    match std::fs::metadata(path) {
        Ok(metadata) => match kind_of(&metadata) {
            None => Found::File(metadata),
            Some(why) => Found::Unfollowable(why),
        },
        Err(err) if err.kind() == io::ErrorKind::NotFound => Found::Missing,
        Err(err) if err.raw_os_error() == Some(libc::ELOOP) => {
            Found::Unfollowable(Unfollowable::SymlinkLoop)
        }
        Err(err) => Found::Failed(err),
    }
}

/// Why a file of this type cannot be followed; `None` for a regular file.
fn kind_of(metadata: &Metadata) -> Option<Unfollowable> {
    let kind = metadata.file_type();
    if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some(Unfollowable::Directory)
    } else if kind.is_fifo() {
        Some(Unfollowable::Fifo)
    } else if kind.is_socket() {
        Some(Unfollowable::Socket)
    } else {
        Some(Unfollowable::Device)
    }
}

/// Why opening failed.
pub enum OpenError {
    Unfollowable(Unfollowable),
    Io(io::Error),
}

/// Opens `path` for reading if it is a file that can be followed, with its metadata.
///
/// Opened without blocking (a path replaced by a FIFO since it was looked at must not
/// hang the tail), then checked again through the open handle, which is what will be
/// read: its type, its filesystem, and that an empty file is really empty.
///
/// Opened without access times where the kernel allows it (the file's owner, or
/// `CAP_FOWNER`): under `relatime`, each read of a file written since it was last read
/// updates its access time, a write of the inode (a journal transaction on ext4) for
/// every read of a live log.
pub fn open(path: &Path) -> Result<(File, Metadata), OpenError> {
    let open = |flags| OpenOptions::new().read(true).custom_flags(flags).open(path);
    let file = match open(libc::O_NONBLOCK | libc::O_NOATIME) {
        Err(err) if err.raw_os_error() == Some(libc::EPERM) => open(libc::O_NONBLOCK),
        opened => opened,
    }
    .map_err(|err| match err.raw_os_error() {
        Some(libc::ELOOP) => OpenError::Unfollowable(Unfollowable::SymlinkLoop),
        _ => OpenError::Io(err),
    })?;
    let metadata = file.metadata().map_err(OpenError::Io)?;
    if let Some(why) = kind_of(&metadata).or_else(|| pseudo_filesystem(&file)) {
        return Err(OpenError::Unfollowable(why));
    }
    if metadata.len() == 0 && file.read_at(&mut [0], 0).map_err(OpenError::Io)? > 0 {
        return Err(OpenError::Unfollowable(Unfollowable::NoSize));
    }
    Ok((file, metadata))
}

/// The type of the filesystem `file` is on (`statfs`'s magic number), if it can be
/// told.
fn filesystem_of(file: &File) -> Option<i64> {
    let mut stats = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: fstatfs fills the struct it is given when it returns 0; it is read only
    // then. The descriptor is open for the duration of the call.
    let filled = unsafe { libc::fstatfs(file.as_raw_fd(), stats.as_mut_ptr()) } == 0;
    if !filled {
        return None;
    }
    // SAFETY: fstatfs returned 0, so the struct is initialised.
    let stats = unsafe { stats.assume_init() };
    // `f_type`'s integer type differs between architectures.
    #[allow(clippy::unnecessary_cast)]
    Some(stats.f_type as i64)
}

/// Whether `folder` is on a filesystem whose changes other machines can make (NFS, SMB,
/// FUSE, cluster filesystems): inotify sees only the changes made on this one, so such a
/// folder is looked at every scan interval whether or not it is watched.
pub fn on_network_filesystem(folder: &Path) -> bool {
    // From linux/magic.h and the filesystems' own headers.
    const NETWORK: [i64; 12] = [
        0x6969,      // NFS
        0x517b,      // SMB
        0xff53_4d42, // CIFS
        0xfe53_4d42, // SMB2
        0x6573_5546, // FUSE (sshfs, s3fs, ...)
        0x00c3_6400, // Ceph
        0x0102_1997, // 9p
        0x5346_414f, // AFS
        0x0116_1970, // GFS2
        0x7461_636f, // OCFS2
        0x0bd0_0bd0, // Lustre
        0x4750_4653, // GPFS
    ];
    File::open(folder)
        .ok()
        .and_then(|folder| filesystem_of(&folder))
        .is_some_and(|kind| NETWORK.contains(&kind))
}

/// The name of the pseudo-filesystem `file` is on, if it is on one.
fn pseudo_filesystem(file: &File) -> Option<Unfollowable> {
    // From linux/magic.h: the filesystems whose files are made up when read.
    const PSEUDO: [(i64, &str); 9] = [
        (0x9fa0, "procfs"),
        (0x6265_6572, "sysfs"),
        (0x6462_6720, "debugfs"),
        (0x7472_6163, "tracefs"),
        (0x0027_e0eb, "cgroupfs"),
        (0x6367_7270, "cgroup2fs"),
        (0x7363_6673, "securityfs"),
        (0x6265_6570, "configfs"),
        (0xcafe_4a11, "bpffs"),
    ];
    let kind = filesystem_of(file)?;
    PSEUDO
        .iter()
        .find(|(magic, _)| *magic == kind)
        .map(|(_, name)| Unfollowable::PseudoFilesystem(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_a_log_leaves_its_access_time_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(&path, "a line\n").unwrap();
        // Accessed long before it was last written: under `relatime` (or
        // `strictatime`) a plain read would now set its access time.
        let long_ago = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        let times = std::fs::FileTimes::new().set_accessed(long_ago);
        File::options()
            .write(true)
            .open(&path)
            .and_then(|file| file.set_times(times))
            .unwrap();
        let Ok((file, _)) = open(&path) else {
            panic!("not opened")
        };
        assert_eq!(file.read_at(&mut [0; 16], 0).unwrap(), 7);
        let accessed = std::fs::metadata(&path).unwrap().accessed().unwrap();
        assert_eq!(accessed, long_ago);
    }

    #[test]
    fn only_regular_files_with_honest_sizes_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("app.log");
        std::fs::write(&file, "x\n").unwrap();
        assert!(matches!(inspect(&file), Found::File(_)));
        assert!(open(&file).is_ok());
        assert!(matches!(
            inspect(dir.path()),
            Found::Unfollowable(Unfollowable::Directory)
        ));
        assert!(matches!(inspect(&dir.path().join("none")), Found::Missing));
        let fifo = dir.path().join("fifo");
        let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string; mkfifo only creates the node.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        assert!(matches!(
            inspect(&fifo),
            Found::Unfollowable(Unfollowable::Fifo)
        ));
        assert!(matches!(
            open(&fifo),
            Err(OpenError::Unfollowable(Unfollowable::Fifo))
        ));
        let looped = dir.path().join("loop");
        std::os::unix::fs::symlink(&looped, &looped).unwrap();
        assert!(matches!(
            inspect(&looped),
            Found::Unfollowable(Unfollowable::SymlinkLoop)
        ));
        assert!(matches!(
            open(Path::new("/proc/self/status")),
            Err(OpenError::Unfollowable(Unfollowable::PseudoFilesystem(
                "procfs"
            )))
        ));
        assert!(matches!(
            inspect(Path::new("/dev/null")),
            Found::Unfollowable(Unfollowable::Device)
        ));
        assert!(!on_network_filesystem(dir.path()));
    }
}
