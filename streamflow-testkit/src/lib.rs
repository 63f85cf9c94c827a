//! Real services for the tests, started on free loopback ports in temporary directories and
//! removed when dropped: [`Postgres`] (Debian's `initdb` and `pg_ctl`) and, for the Kafka tests,
//! the tansu broker. Nothing here is a mock: the tests talk to the real thing over TCP.
//!
//! `scripts/install-test-deps.sh` installs what is missing.

use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A port nothing listens on now (the OS picks it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

/// Waits until something accepts connections on `port`.
pub fn wait_for_port(port: u16, timeout: Duration) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn run(command: &mut Command) -> io::Result<Output> {
    let output = command.output()?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(io::Error::other(format!(
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}

/// The directory of Debian's PostgreSQL programs (`initdb`, `pg_ctl`).
pub fn postgres_bin_dir() -> io::Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    dirs.sort();
    dirs.pop().ok_or_else(|| io::Error::other("PostgreSQL is not installed: run scripts/install-test-deps.sh"))
}

/// A throwaway PostgreSQL server: its own data directory, a free port, a superuser
/// `streamflow` with password `streamflow`, and a database `realtime`.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl Postgres {
    /// The superuser's name and password.
    pub const USER: &'static str = "streamflow";
    /// The database the tests use.
    pub const DATABASE: &'static str = "realtime";

    /// Creates and starts a server. `initdb` refuses to run as root, so as root the server runs
    /// as the `postgres` system user that Debian's package creates.
    pub fn start() -> io::Result<Postgres> {
        Postgres::create(None)
    }

    /// A server that takes TCP connections over TLS only (`ssl=on`, `hostssl` in pg_hba.conf),
    /// with the server certificate of `certificates`.
    pub fn start_tls(certificates: &Certificates) -> io::Result<Postgres> {
        Postgres::create(Some(certificates))
    }

    fn create(tls: Option<&Certificates>) -> io::Result<Postgres> {
        let bin = postgres_bin_dir()?;
        let dir = tempfile::Builder::new().prefix("streamflow-pg-").tempdir()?;
        let server = Postgres { dir, bin, port: free_port() };
        if is_root() {
            run(Command::new("chown").arg("-R").arg("postgres:postgres").arg(server.dir.path()))?;
        }
        let password_file = server.dir.path().join("password");
        std::fs::write(&password_file, Self::USER)?;
        if is_root() {
            run(Command::new("chown").arg("postgres:postgres").arg(&password_file))?;
        }
        server.as_owner(&server.bin.join("initdb"), |c| {
            c.arg("-D")
                .arg(server.data())
                .args(["-U", Self::USER, "-E", "UTF8", "--locale=C", "--auth-local=trust"])
                .arg("--auth-host=scram-sha-256")
                .arg(format!("--pwfile={}", password_file.display()))
        })?;
        if let Some(certificates) = tls {
            let data = server.data();
            std::fs::copy(&certificates.server_cert, data.join("server.crt"))?;
            std::fs::copy(&certificates.server_key, data.join("server.key"))?;
            let hba = std::fs::read_to_string(data.join("pg_hba.conf"))?;
            let hba: String = hba
                .lines()
                .map(
                    |line| if line.starts_with("host") { line.replacen("host", "hostssl", 1) } else { line.to_owned() },
                )
                .collect::<Vec<_>>()
                .join("\n");
            std::fs::write(data.join("pg_hba.conf"), hba + "\n")?;
            let mut conf = std::fs::OpenOptions::new().append(true).open(data.join("postgresql.conf"))?;
            io::Write::write_all(&mut conf, b"ssl = on\n")?;
            run(Command::new("chmod").arg("600").arg(data.join("server.key")))?;
            if is_root() {
                run(Command::new("chown").arg("-R").arg("postgres:postgres").arg(&data))?;
            }
        }
        server.start_again()?;
        server.psql("postgres", &format!("CREATE DATABASE {}", Self::DATABASE))?;
        Ok(server)
    }

    /// Runs `sql` in `database` as the superuser, through the local socket-less `psql`.
    pub fn psql(&self, database: &str, sql: &str) -> io::Result<()> {
        let url = format!("postgres://{0}:{0}@127.0.0.1:{1}/{database}?sslmode=prefer", Self::USER, self.port);
        run(Command::new(self.bin.join("psql")).args(["-X", "-q", "-v", "ON_ERROR_STOP=1", &url, "-c", sql])).map(drop)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs a PostgreSQL program as the data directory's owner.
    fn as_owner(&self, program: &Path, args: impl FnOnce(&mut Command) -> &mut Command) -> io::Result<Output> {
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        command.current_dir(self.dir.path());
        run(args(&mut command))
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for `database`.
    pub fn url_of(&self, database: &str) -> String {
        format!("postgres://{0}:{0}@127.0.0.1:{1}/{database}", Self::USER, self.port)
    }

    /// The connection URL of the test database.
    pub fn url(&self) -> String {
        self.url_of(Self::DATABASE)
    }

    /// Stops the server at once, as a crash would (`pg_ctl stop -m immediate`).
    pub fn stop(&self) -> io::Result<()> {
        self.as_owner(&self.bin.join("pg_ctl"), |c| {
            c.arg("-D").arg(self.data()).args(["-m", "immediate", "-w", "stop"])
        })
        .map(drop)
    }

    /// Starts the server again on the same port, and waits until it accepts connections.
    pub fn start_again(&self) -> io::Result<()> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off -c max_connections=200",
            self.port
        );
        let log = self.dir.path().join("server.log");
        self.as_owner(&self.bin.join("pg_ctl"), |c| {
            c.arg("-D").arg(self.data()).arg("-o").arg(&options).arg("-l").arg(&log).args(["-w", "start"])
        })?;
        wait_for_port(self.port, Duration::from_secs(30))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// The directory of the tools the tests need: `$STREAMFLOW_TOOLS_DIR` (default
/// `~/.cache/streamflow/tools`), where `scripts/install-test-deps.sh` puts them.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("STREAMFLOW_TOOLS_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/streamflow/tools")))
        .unwrap_or_else(|| PathBuf::from(".cache/streamflow/tools"))
}

/// The Python of the tests' own virtual environment, with the third-party clients they check
/// against (confluent-kafka): `scripts/install-test-deps.sh` makes it.
pub fn python() -> PathBuf {
    tools_dir().join("python/bin/python")
}

/// Runs a Python script with the tests' Python: its standard output, or an error with both
/// outputs.
pub fn run_python(script: &str, args: &[&str]) -> io::Result<String> {
    let output = run(Command::new(python()).arg("-c").arg(script).args(args))?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Where a [`Tansu`] broker keeps its log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// In memory: gone when the broker stops.
    Memory,
    /// In an SQLite file in the broker's directory: kept across a restart of the broker.
    Sqlite,
}

/// A tansu broker (a Kafka-compatible broker in Rust) on a free loopback port.
pub struct Tansu {
    dir: tempfile::TempDir,
    port: u16,
    storage: Storage,
    child: Option<std::process::Child>,
    /// Whether clients must log in (SASL SCRAM).
    authentication: bool,
    /// The port of the TLS endpoint in front of the broker (stunnel), when there is one: the
    /// one advertised to clients.
    tls_port: Option<u16>,
    stunnel: Option<std::process::Child>,
}

/// How to start a broker: its storage, the users it knows (each for SCRAM-SHA-256 and
/// SCRAM-SHA-512; then clients must log in), and whether a TLS endpoint stands in front of it.
pub struct TansuOptions<'a> {
    /// Where the log is kept; users need [`Storage::Sqlite`] (tansu keeps none in memory).
    pub storage: Storage,
    /// `(name, password)` of each user.
    pub users: &'a [(&'a str, &'a str)],
    /// TLS in front, with the server certificate of these: tansu 0.6 has no TLS listener of
    /// its own, so stunnel takes TLS and passes the bytes on.
    pub tls: Option<&'a Certificates>,
}

impl Tansu {
    /// The tansu binary: `$STREAMFLOW_TOOLS_DIR/bin/tansu` (default
    /// `~/.cache/streamflow/tools`), else `tansu` on the `PATH`.
    pub fn binary() -> PathBuf {
        Some(tools_dir().join("bin/tansu")).filter(|bin| bin.exists()).unwrap_or_else(|| "tansu".into())
    }

    /// Starts a broker.
    pub fn start(storage: Storage) -> io::Result<Tansu> {
        Tansu::start_with(TansuOptions { storage, users: &[], tls: None })
    }

    /// Starts a broker as `options` say.
    pub fn start_with(options: TansuOptions<'_>) -> io::Result<Tansu> {
        let dir = tempfile::Builder::new().prefix("streamflow-tansu-").tempdir()?;
        let tls_port = options.tls.map(|_| free_port());
        let mut broker = Tansu {
            dir,
            port: free_port(),
            storage: options.storage,
            child: None,
            authentication: false,
            tls_port,
            stunnel: None,
        };
        broker.start_again()?;
        if !options.users.is_empty() {
            if broker.storage != Storage::Sqlite {
                return Err(io::Error::other("tansu keeps users in SQLite storage only"));
            }
            // `tansu user` does not log in itself: the users are made before logins are required.
            for (name, password) in options.users {
                for mechanism in ["scram256", "scram512"] {
                    run(Command::new(Self::binary())
                        .args(["user", "create", name, password, "--mechanism", mechanism])
                        .arg("--broker")
                        .arg(format!("tcp://127.0.0.1:{}", broker.port)))?;
                }
            }
            broker.authentication = true;
            broker.start_again()?;
        }
        if let (Some(certificates), Some(tls_port)) = (options.tls, tls_port) {
            let config = broker.dir.path().join("stunnel.conf");
            std::fs::write(
                &config,
                format!(
                    "foreground = yes\npid =\n[kafka]\naccept = 127.0.0.1:{tls_port}\nconnect = 127.0.0.1:{}\ncert = {}\nkey = {}\n",
                    broker.port,
                    certificates.server_cert.display(),
                    certificates.server_key.display()
                ),
            )?;
            let log = std::fs::File::create(broker.dir.path().join("stunnel.log"))?;
            let stunnel =
                Command::new("stunnel4").arg(&config).stdout(log.try_clone()?).stderr(log).spawn().map_err(|e| {
                    io::Error::other(format!("cannot start stunnel4 ({e}): run scripts/install-test-deps.sh"))
                })?;
            broker.stunnel = Some(stunnel);
            wait_for_port(tls_port, Duration::from_secs(10))?;
        }
        Ok(broker)
    }

    /// `127.0.0.1:PORT`, for a client's bootstrap list: the TLS endpoint when there is one.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.tls_port.unwrap_or(self.port))
    }

    /// The broker's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    /// Stops the broker at once (SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Adds partitions to `topic` until it has `partitions`, restarting the broker: tansu 0.6
    /// serves no CreatePartitions request, so `scripts/tansu-add-partitions.py` edits its
    /// SQLite storage while it is stopped, as CreatePartitions would (the new partitions are
    /// empty). SQLite storage only.
    pub fn add_partitions(&mut self, topic: &str, partitions: u32) -> io::Result<()> {
        if self.storage != Storage::Sqlite {
            return Err(io::Error::other("adding partitions needs SQLite storage"));
        }
        self.stop();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/tansu-add-partitions.py");
        run(Command::new("python3")
            .arg(script)
            .arg(self.dir.path().join("tansu.db"))
            .arg(topic)
            .arg(partitions.to_string()))?;
        self.start_again()
    }

    /// Starts the broker again on the same port (with SQLite storage, with the same log).
    pub fn start_again(&mut self) -> io::Result<()> {
        self.stop();
        let listener = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!("tcp://{}", self.address());
        let storage = match self.storage {
            Storage::Memory => "memory://tansu/",
            Storage::Sqlite => "sqlite://tansu.db",
        };
        let log = std::fs::File::create(self.dir.path().join("broker.log"))?;
        let mut command = Command::new(Self::binary());
        command.args(["broker", "--listener-url", &listener, "--advertised-listener-url", &advertised]);
        if self.authentication {
            command.arg("--authentication");
        }
        let child = command
            .args(["--storage-engine", storage])
            .current_dir(self.dir.path())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| io::Error::other(format!("cannot start tansu ({e}): run scripts/install-test-deps.sh")))?;
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(30))?;
        if self.storage == Storage::Sqlite {
            // Fetching from SQLite is slow without this index (about 1.2K against 42K records/s).
            run(Command::new("python3").current_dir(self.dir.path()).args([
                "-c",
                "import sqlite3; c = sqlite3.connect('tansu.db'); \
                 c.execute('create index if not exists header_topition_offset on header(topition, offset_id)'); \
                 c.commit()",
            ]))?;
        }
        Ok(())
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop();
        if let Some(mut stunnel) = self.stunnel.take() {
            let _ = stunnel.kill();
            let _ = stunnel.wait();
        }
    }
}

/// CPU seconds (user + system) a process has used so far, from `/proc`.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // Fields after the command name, which may hold spaces, closed by the last ')'.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name; 100 ticks a second.
    (ticks(11) + ticks(12)) / 100.0
}

/// The ids of the processes whose command name is `name`.
pub fn pids_named(name: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == name))
        .collect()
}

/// A GET over plain HTTP/1.1 to a port of this machine: the status and the body.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// Certificates made with openssl for TLS tests: an authority, a server certificate it signs for
/// `127.0.0.1` and `localhost`, and another authority that signs nothing of theirs.
pub struct Certificates {
    _dir: tempfile::TempDir,
    /// The authority's certificate (PEM).
    pub ca: PathBuf,
    /// The server's certificate (PEM), for 127.0.0.1 and localhost.
    pub server_cert: PathBuf,
    /// Its key (PEM).
    pub server_key: PathBuf,
    /// The certificate of an authority that did not sign the server's.
    pub other_ca: PathBuf,
}

impl Certificates {
    /// Makes them, in a directory of their own.
    pub fn make() -> io::Result<Certificates> {
        let dir = tempfile::Builder::new().prefix("streamflow-certs-").tempdir()?;
        let path = |name: &str| dir.path().join(name);
        let openssl = |args: &[&str]| run(Command::new("openssl").args(args).current_dir(dir.path())).map(drop);
        for ca in ["ca", "other-ca"] {
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN=streamflow test {ca}"),
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.pem"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ])?;
        }
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ])?;
        std::fs::write(path("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ])?;
        Ok(Certificates {
            ca: path("ca.pem"),
            server_cert: path("server.pem"),
            server_key: path("server.key"),
            other_ca: path("other-ca.pem"),
            _dir: dir,
        })
    }
}
