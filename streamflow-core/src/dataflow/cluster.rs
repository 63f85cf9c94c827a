//! Timely's cluster mode: one pipeline over several processes, connected in a mesh of TCP
//! connections that timely's own communication layer then runs on. What this module adds
//! around it:
//!
//! * connecting has a deadline, and every connection starts with a handshake in which the
//!   processes compare the settings that shape results — a mismatch is refused, saying what
//!   differs;
//! * process 0 reads the sink's checkpoint once the mesh stands, and sends it to the others,
//!   so that every process resumes from the same one;
//! * fail-stop: a peer that dies (its connections close) or falls silent (no byte for the peer
//!   timeout, while a heartbeat dataflow sends some every 200 ms) stops the others within
//!   seconds, with the lost peer named, instead of a hang or a cascade of panics.
//!
//! ```text
//!  process 1 ──connect──► process 0      hello (settings) ◄──► hello (settings)
//!  process 2 ──connect──► process 0, 1   process 0 ──resume (its sink's checkpoint)──► the others
//!                                         then timely's own traffic on the same sockets
//! ```

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use timely::communication::allocator::zero_copy::initialize::{initialize_networking_from_sockets, CommsGuard};
use timely::communication::allocator::zero_copy::stream::Stream;
use timely::communication::allocator::ProcessBuilder;
use timely::communication::{AllocatorBuilder, Hooks};

use crate::checkpoint::{Checkpoint, Settings};
use crate::error::Error;

/// How this process joins a cluster of processes running one pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// This process's index, from 0.
    pub process: usize,
    /// `host:port` of every process, in index order; this process listens on its own.
    pub addresses: Vec<String>,
    /// How long connecting to every peer may take.
    pub connect_timeout: Duration,
    /// How long a peer may send nothing before it counts as lost.
    pub peer_timeout: Duration,
    /// Settings every process must share beyond the window, the columns and the workers (the
    /// topic, the pipeline's name): name → value.
    pub settings: BTreeMap<String, String>,
}

impl ClusterConfig {
    /// Process `process` of the processes at `addresses`, with default timeouts (30 s to
    /// connect, 10 s of silence).
    pub fn new(process: usize, addresses: Vec<String>) -> ClusterConfig {
        ClusterConfig {
            process,
            addresses,
            connect_timeout: Duration::from_secs(30),
            peer_timeout: Duration::from_secs(10),
            settings: BTreeMap::new(),
        }
    }

    /// How many processes there are.
    pub fn processes(&self) -> usize {
        self.addresses.len()
    }

    fn check(&self) -> Result<(), Error> {
        if self.addresses.len() < 2 {
            return Err(Error::configuration("a cluster has at least two processes"));
        }
        if self.process >= self.addresses.len() {
            return Err(Error::configuration(format!(
                "process {} of {}: the index is at most {}",
                self.process,
                self.addresses.len(),
                self.addresses.len() - 1
            )));
        }
        Ok(())
    }
}

/// What a process says of itself when it connects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Hello {
    process: usize,
    settings: BTreeMap<String, String>,
}

/// What process 0 sends once the mesh stands.
#[derive(Debug, Serialize, Deserialize)]
enum Resume {
    From(Checkpoint),
    Refused(String),
}

/// The figures and the fate of the connection to one peer.
#[derive(Debug)]
pub struct PeerState {
    /// The peer's index.
    pub process: usize,
    /// Its address.
    pub address: String,
    /// Bytes received from it.
    pub received: AtomicU64,
    /// Bytes sent to it.
    pub sent: AtomicU64,
    /// When a byte last came, in milliseconds since the mesh stood.
    last_heard_ms: AtomicU64,
    /// Why the connection ended, if it did.
    lost: Mutex<Option<String>>,
}

/// The mesh of one process: its peers, and whether the pipeline is done with them.
pub struct Mesh {
    /// This process's index.
    pub process: usize,
    /// The other processes.
    pub peers: Vec<Arc<PeerState>>,
    started: Instant,
    finished: AtomicBool,
    comms: Mutex<Option<CommsGuard>>,
}

impl std::fmt::Debug for Mesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mesh").field("process", &self.process).field("peers", &self.peers).finish_non_exhaustive()
    }
}

impl Mesh {
    /// The first peer whose connection was lost, with why.
    pub fn lost_peer(&self) -> Option<(usize, String, String)> {
        self.peers.iter().find_map(|peer| {
            let lost = peer.lost.lock().unwrap_or_else(|e| e.into_inner()).clone();
            lost.map(|why| (peer.process, peer.address.clone(), why))
        })
    }

    /// The error of a pipeline whose workers failed: the lost peer, if one was.
    pub(crate) fn failure(&self, worker_error: &str) -> Error {
        match self.lost_peer() {
            Some((process, address, why)) => Error::unreachable(format!(
                "lost process {process} ({address}): {why}. This process stops; restart every process to \
                 resume from the last commit"
            )),
            None => Error::new(format!("a worker failed: {worker_error}")),
        }
    }

    /// Ends the mesh: after a clean run, waits for timely's network threads to send what they
    /// hold; after a failure leaves them, as they may be stuck on a dead connection.
    pub(crate) fn finish(&self, clean: bool) {
        self.finished.store(true, Relaxed);
        let comms = self.comms.lock().unwrap_or_else(|e| e.into_inner()).take();
        if clean {
            drop(comms);
        } else {
            std::mem::forget(comms);
        }
    }
}

impl PeerState {
    fn heard(&self, mesh_started: Instant) {
        self.last_heard_ms.store(mesh_started.elapsed().as_millis() as u64, Relaxed);
    }

    fn lose(&self, why: String) {
        let mut lost = self.lost.lock().unwrap_or_else(|e| e.into_inner());
        if lost.is_none() {
            *lost = Some(why);
        }
        CASCADE.store(true, Relaxed);
    }
}

/// Set once a connection is lost: from then on the panics with which timely's threads and the
/// workers take the computation down are expected, and are not printed.
static CASCADE: AtomicBool = AtomicBool::new(false);

/// A connection to a peer, counting bytes and noting its end, as timely's network threads use it.
struct PeerStream {
    stream: TcpStream,
    peer: Arc<PeerState>,
    started: Instant,
}

impl Read for PeerStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.stream.read(buf) {
            Ok(0) => {
                // The end of a clean shutdown too; it only counts if the run fails.
                self.peer.lose("the connection closed (the process ended or was killed)".into());
                Ok(0)
            }
            Ok(n) => {
                self.peer.received.fetch_add(n as u64, Relaxed);
                self.peer.heard(self.started);
                Ok(n)
            }
            Err(error) => {
                self.peer.lose(format!("the connection failed: {error}"));
                Err(error)
            }
        }
    }
}

impl Write for PeerStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.stream.write(buf) {
            Ok(n) => {
                self.peer.sent.fetch_add(n as u64, Relaxed);
                Ok(n)
            }
            Err(error) => {
                self.peer.lose(format!("sending failed: {error}"));
                Err(error)
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl Stream for PeerStream {
    fn try_clone(&self) -> io::Result<Self> {
        Ok(PeerStream { stream: self.stream.try_clone()?, peer: Arc::clone(&self.peer), started: self.started })
    }
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.stream.set_nonblocking(nonblocking)
    }
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.stream.shutdown(how)
    }
}

/// Connects this process to its peers, checks that they agree on `settings`, gets the checkpoint
/// to resume from (on process 0 from `checkpoint`, which reads the sink's; elsewhere from
/// process 0), and builds timely's allocators for `workers` threads on the connections.
pub(crate) fn start(
    config: &ClusterConfig,
    workers: usize,
    settings: &Settings,
    checkpoint: impl FnOnce() -> Result<Checkpoint, Error>,
) -> Result<(Vec<AllocatorBuilder>, Arc<Mesh>, Checkpoint), Error> {
    config.check()?;
    let mut shared = config.settings.clone();
    shared.insert("processes".into(), config.processes().to_string());
    shared.insert("workers per process".into(), workers.to_string());
    shared.insert("window size (s)".into(), settings.window.size_secs().to_string());
    shared.insert("allowed lateness (s)".into(), settings.window.lateness_secs().to_string());
    shared.insert("columns".into(), settings.columns.clone());
    let hello = Hello { process: config.process, settings: shared };

    tracing::info!(process = config.process, processes = config.processes(), "Connecting to the other processes.");
    let mut sockets = connect(config, &hello)?;
    let resume = if config.process == 0 {
        let resume = checkpoint();
        let message = match &resume {
            Ok(checkpoint) => Resume::From(checkpoint.clone()),
            Err(error) => Resume::Refused(error.to_string()),
        };
        for stream in sockets.iter_mut().flatten() {
            send_frame(stream, &message).map_err(|e| Error::unreachable("cannot send the checkpoint").caused_by(e))?;
        }
        resume?
    } else {
        let zero = sockets[0].as_mut().expect("process 0 is a peer");
        match read_frame::<Resume>(zero).map_err(|e| Error::unreachable("process 0 sent no checkpoint").caused_by(e))? {
            Resume::From(checkpoint) => checkpoint,
            Resume::Refused(why) => return Err(Error::rejected(format!("process 0 cannot start: {why}"))),
        }
    };

    let started = Instant::now();
    let mut peers = Vec::new();
    let mut streams = Vec::new();
    for (index, socket) in sockets.into_iter().enumerate() {
        streams.push(socket.map(|stream| {
            let _ = stream.set_read_timeout(None);
            let _ = stream.set_write_timeout(None);
            let peer = Arc::new(PeerState {
                process: index,
                address: config.addresses[index].clone(),
                received: AtomicU64::new(0),
                sent: AtomicU64::new(0),
                last_heard_ms: AtomicU64::new(0),
                lost: Mutex::new(None),
            });
            peers.push(Arc::clone(&peer));
            PeerStream { stream, peer, started }
        }));
    }
    let watched: Vec<(Arc<PeerState>, TcpStream)> = streams
        .iter()
        .flatten()
        .map(|s| Ok((Arc::clone(&s.peer), s.stream.try_clone()?)))
        .collect::<io::Result<_>>()
        .map_err(|e| Error::new("cannot watch the connections").caused_by(e))?;

    let hooks = Hooks::default();
    let process_allocators = ProcessBuilder::new_typed_vector(workers, hooks.refill.clone(), hooks.spill.clone());
    let (builders, comms) =
        initialize_networking_from_sockets(process_allocators, streams, config.process, workers, hooks)
            .map_err(|e| Error::new("cannot start the network threads").caused_by(e))?;
    let mesh = Arc::new(Mesh {
        process: config.process,
        peers,
        started,
        finished: AtomicBool::new(false),
        comms: Mutex::new(Some(comms)),
    });
    quiet_cascade();
    watch(Arc::clone(&mesh), watched, config.peer_timeout);
    tracing::info!(process = config.process, processes = config.processes(), "Connected to every process.");
    Ok((builders.into_iter().map(AllocatorBuilder::Tcp).collect(), mesh, resume))
}

/// The connections to every other process, in index order (`None` for this one): this process
/// connects to those before it and accepts those after it, each starting with a [`Hello`].
fn connect(config: &ClusterConfig, hello: &Hello) -> Result<Vec<Option<TcpStream>>, Error> {
    let deadline = Instant::now() + config.connect_timeout;
    let me = config.process;
    let mut sockets: Vec<Option<TcpStream>> = (0..config.processes()).map(|_| None).collect();
    let listener = (me + 1 < config.processes())
        .then(|| {
            TcpListener::bind(&config.addresses[me]).and_then(|l| l.set_nonblocking(true).map(|()| l)).map_err(|e| {
                Error::configuration(format!("cannot listen on {} (process {me}'s address)", config.addresses[me]))
                    .caused_by(e)
            })
        })
        .transpose()?;
    for (peer, address) in config.addresses.iter().enumerate().take(me) {
        let stream = connect_before(address, deadline).map_err(|e| {
            Error::unreachable(format!("cannot reach process {peer} at {address} within {:?}", config.connect_timeout))
                .caused_by(e)
        })?;
        sockets[peer] = Some(greet(stream, hello, Some(peer), config)?.0);
    }
    if let Some(listener) = listener {
        while sockets[me + 1..].iter().any(Option::is_none) {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).map_err(|e| Error::new("cannot use a connection").caused_by(e))?;
                    let (stream, peer) = greet(stream, hello, None, config)?;
                    sockets[peer] = Some(stream);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        let missing: Vec<String> = (me + 1..config.processes())
                            .filter(|&p| sockets[p].is_none())
                            .map(|p| format!("{p} ({})", config.addresses[p]))
                            .collect();
                        return Err(Error::unreachable(format!(
                            "processes {} did not connect within {:?}",
                            missing.join(", "),
                            config.connect_timeout
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(Error::new("cannot accept connections").caused_by(e)),
            }
        }
    }
    Ok(sockets)
}

/// Connects to `address`, retrying until `deadline`.
fn connect_before(address: &str, deadline: Instant) -> io::Result<TcpStream> {
    loop {
        let attempt = address.to_socket_addrs().and_then(|mut addrs| {
            let addr = addrs.next().ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
            let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
            TcpStream::connect_timeout(&addr, left.min(Duration::from_secs(2)))
        });
        match attempt {
            Ok(stream) => return Ok(stream),
            Err(error) if Instant::now() >= deadline => return Err(error),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Exchanges hellos on a new connection and checks the peer — the one expected (`expected`, when
/// this process connected) or one after this one, with the same settings — and says which it is.
fn greet(
    mut stream: TcpStream,
    hello: &Hello,
    expected: Option<usize>,
    config: &ClusterConfig,
) -> Result<(TcpStream, usize), Error> {
    let io = |e: io::Error| Error::unreachable("the handshake with another process failed").caused_by(e);
    stream.set_nodelay(true).map_err(io)?;
    stream.set_read_timeout(Some(config.connect_timeout)).map_err(io)?;
    stream.set_write_timeout(Some(config.connect_timeout)).map_err(io)?;
    keepalive(&stream, config.peer_timeout).map_err(io)?;
    send_frame(&mut stream, hello).map_err(io)?;
    let theirs: Hello = read_frame(&mut stream).map_err(io)?;
    let valid = theirs.process < config.processes() && theirs.process != hello.process;
    if !valid || expected.is_some_and(|e| e != theirs.process) || (expected.is_none() && theirs.process < hello.process)
    {
        return Err(Error::configuration(format!(
            "a process said it is process {} of {}; check --process and the addresses",
            theirs.process,
            config.processes()
        )));
    }
    let differences = differences(&hello.settings, &theirs.settings);
    if !differences.is_empty() {
        return Err(Error::configuration(format!(
            "process {} runs with other settings: {}. Every process of a pipeline runs with the same ones",
            theirs.process,
            differences.join("; ")
        )));
    }
    Ok((stream, theirs.process))
}

/// What differs between this process's settings and a peer's, one line each.
fn differences(ours: &BTreeMap<String, String>, theirs: &BTreeMap<String, String>) -> Vec<String> {
    let names: std::collections::BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let (a, b) = (ours.get(name), theirs.get(name));
            (a != b).then(|| {
                let show = |v: Option<&String>| v.map_or("(none)".to_owned(), |v| format!("{v:?}"));
                format!("{name} (this process: {}, that one: {})", show(a), show(b))
            })
        })
        .collect()
}

/// TCP keepalive and a user timeout, so that a connection to a host that vanished fails in about
/// `timeout` rather than the system's many minutes.
fn keepalive(stream: &TcpStream, timeout: Duration) -> io::Result<()> {
    let socket = socket2::SockRef::from(stream);
    let probe = (timeout / 4).max(Duration::from_secs(1));
    socket.set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(probe).with_interval(probe).with_retries(3))?;
    #[cfg(target_os = "linux")]
    socket.set_tcp_user_timeout(Some(timeout))?;
    Ok(())
}

/// The frames of the handshake: a 4-byte big-endian length, then JSON.
fn send_frame(stream: &mut TcpStream, value: &impl Serialize) -> io::Result<()> {
    let body = serde_json::to_vec(value).map_err(io::Error::other)?;
    stream.write_all(&(body.len() as u32).to_be_bytes())?;
    stream.write_all(&body)?;
    stream.flush()
}

fn read_frame<T: for<'de> Deserialize<'de>>(stream: &mut TcpStream) -> io::Result<T> {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length)?;
    let length = u32::from_be_bytes(length) as usize;
    if length > 1 << 30 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "a handshake frame of more than 1 GiB"));
    }
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    serde_json::from_slice(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Watches the peers: one that sent nothing for `timeout` (the heartbeat sends something every
/// 200 ms) counts as lost, and its connection is shut, which takes the computation down.
fn watch(mesh: Arc<Mesh>, peers: Vec<(Arc<PeerState>, TcpStream)>, timeout: Duration) {
    let spawned = std::thread::Builder::new().name("cluster-watch".into()).spawn(move || {
        while !mesh.finished.load(Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            let now = mesh.started.elapsed();
            for (peer, stream) in &peers {
                let heard = Duration::from_millis(peer.last_heard_ms.load(Relaxed));
                if now.saturating_sub(heard) > timeout && !mesh.finished.load(Relaxed) {
                    peer.lose(format!("it sent nothing for {timeout:?} (stopped, or cut off by the network)"));
                    tracing::error!(process = peer.process, address = %peer.address, "A peer fell silent; stopping.");
                    let _ = stream.shutdown(Shutdown::Both);
                }
            }
        }
    });
    if let Err(error) = spawned {
        tracing::warn!(%error, "Cannot watch the other processes; a silent one is found by TCP only.");
    }
}

/// Keeps the panics with which timely takes the computation down after a lost connection out of
/// the output (the error the pipeline returns names the lost peer); other panics print as ever.
fn quiet_cascade() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CASCADE.load(Relaxed) {
                tracing::debug!(panic = %info, "A thread stopped after a lost connection.");
            } else {
                previous(info);
            }
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_each_setting() {
        let ours: BTreeMap<String, String> = [("topic".into(), "a".into()), ("workers".into(), "2".into())].into();
        let theirs: BTreeMap<String, String> = [("topic".into(), "b".into()), ("workers".into(), "2".into())].into();
        assert_eq!(differences(&ours, &theirs), vec![r#"topic (this process: "a", that one: "b")"#.to_owned()]);
        assert!(differences(&ours, &ours).is_empty());
    }

    #[test]
    fn a_bad_index_is_refused() {
        assert!(ClusterConfig::new(2, vec!["a:1".into(), "b:1".into()]).check().is_err());
        assert!(ClusterConfig::new(0, vec!["a:1".into()]).check().is_err());
        assert!(ClusterConfig::new(1, vec!["a:1".into(), "b:1".into()]).check().is_ok());
    }
}
