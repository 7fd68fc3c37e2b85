//! A git server over ssh for tests: OpenSSH's `sshd` (Debian's `openssh-server`, installed by
//! `dev/prereqs.sh`) on a free port of an address, with a host key and one client key made for
//! the test, public-key authentication only, serving the repositories under a root as
//! `ssh://USER@HOST:PORT/ROOT/NAME.git`. It runs as the test's user (root on the dev machine,
//! where the real node needs it); the process is killed when the value is dropped.

use std::net::{IpAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct SshGit {
    child: Child,
    dir: tempfile::TempDir,
    host: IpAddr,
    port: u16,
    user: String,
}

impl SshGit {
    /// Starts sshd on `host` (a free port), letting the made client key in as the current user.
    pub fn start(host: IpAddr) -> Result<SshGit, String> {
        let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .ok_or("no sshd: install Debian's openssh-server (make prereqs does)")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path();
        for (file, kind) in [("host_key", "ed25519"), ("client_key", "ed25519")] {
            run(Command::new("ssh-keygen").args([
                "-q",
                "-t",
                kind,
                "-N",
                "",
                "-C",
                "slipway-test",
                "-f",
                &path.join(file).display().to_string(),
            ]))?;
        }
        std::fs::copy(path.join("client_key.pub"), path.join("authorized_keys"))
            .map_err(|e| e.to_string())?;
        // sshd's privilege separation directory (absent where no sshd was ever started).
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = TcpListener::bind((host, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port on {host}: {e}"))?
            .port();
        let config = format!(
            "Port {port}\nListenAddress {host}\nHostKey {dir}/host_key\nPidFile {dir}/sshd.pid\n\
             AuthorizedKeysFile {dir}/authorized_keys\nPubkeyAuthentication yes\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
             StrictModes no\nUsePAM no\nLogLevel VERBOSE\n",
            dir = path.display()
        );
        std::fs::write(path.join("sshd_config"), config).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(path.join("sshd.log")).map_err(|e| e.to_string())?;
        let child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(path.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {sshd}: {e}"))?;
        let user = String::from_utf8_lossy(
            &Command::new("id")
                .arg("-un")
                .output()
                .map_err(|e| e.to_string())?
                .stdout,
        )
        .trim()
        .to_string();
        let server = SshGit {
            child,
            dir,
            host,
            port,
            user,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect((host, port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!("sshd did not listen on {host}:{port}:\n{}", server.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    /// The clone URL of the bare repository at `path` (absolute).
    pub fn url(&self, path: &Path) -> String {
        format!(
            "ssh://{}@{}:{}{}",
            self.user,
            self.host,
            self.port,
            path.display()
        )
    }

    /// The port sshd listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The client's private key (OpenSSH format), for a Secret's `ssh-privatekey`.
    pub fn client_key(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("client_key")).unwrap_or_default()
    }

    /// The `known_hosts` line of the server (`[HOST]:PORT TYPE KEY`), for a Secret's `known_hosts`.
    pub fn known_hosts(&self) -> String {
        let public = std::fs::read_to_string(self.dir.path().join("host_key.pub")).unwrap_or_default();
        let mut fields = public.split_whitespace();
        let (kind, key) = (
            fields.next().unwrap_or_default(),
            fields.next().unwrap_or_default(),
        );
        format!("[{}]:{} {kind} {key}\n", self.host, self.port)
    }

    /// What sshd logged (authentication attempts and failures).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// The folder of the server's files (keys, configuration, log).
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for SshGit {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let out = command.output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{command:?}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}
