"""Real Dovecot, Postfix and PostgreSQL on loopback for the integration tests, from Debian's packages.

The servers run as root from a temporary directory on free ports and stop when the session ends.
They fail loudly (with their logs) when they cannot start; MUTUALPLAN_SKIP_SERVERS=1 skips them instead.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import glob
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SKIP_ENV = "MUTUALPLAN_SKIP_SERVERS"
HOST = "127.0.0.1"
# Dovecot will not deliver or serve mail as root, so mail files belong to this system user.
MAIL_USER = "mutualplan-mail"
DOVECOT_LDA = "/usr/lib/dovecot/dovecot-lda"
DOVECOT_DH = "/usr/share/dovecot/dh.pem"
STARTUP_TIMEOUT = 30.0

# The accounts every mail test can count on: the seller's mailbox and the prospect's side.
DEFAULT_USERS = {
    "seller@northwind.example": "seller-pass",
    "prospect@acme.example": "prospect-pass",
    "cfo@acme.example": "cfo-pass",
    "legal@acme.example": "legal-pass",
}


class ServerStartError(Exception):
    """A server that did not start; the message carries its command output and logs."""


def _run(cmd: list[str], *, what: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess[str]:
    """Run a setup command and turn a failure into a ServerStartError that shows its output."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServerStartError(f"{what}: {' '.join(cmd)} failed: {exc}") from exc
    if proc.returncode != 0:
        raise ServerStartError(
            f"{what}: {' '.join(cmd)} exited with {proc.returncode}\n{proc.stdout}{proc.stderr}".rstrip()
        )
    return proc


def _start_daemon(
    cmd: list[str], *, what: str, output: Path, timeout: float = 60, cwd: Path | None = None
) -> None:
    """Run a command that leaves a daemon behind; its output goes to a file, as a pipe would never close."""
    with output.open("ab") as out:
        try:
            proc = subprocess.run(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, timeout=timeout,
                check=False, cwd=cwd,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServerStartError(f"{what}: {' '.join(cmd)} failed: {exc}\n{_tail(output)}") from exc
    if proc.returncode != 0:
        raise ServerStartError(f"{what}: {' '.join(cmd)} exited with {proc.returncode}\n{_tail(output)}")


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports that were free a moment ago (all held open until all are chosen)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((HOST, 0))
            ports.append(sock.getsockname()[1])
        return ports


def wait_for_banner(
    port: int,
    expect: bytes,
    *,
    what: str,
    logs: Callable[[], str],
    tls: bool = False,
    timeout: float = STARTUP_TIMEOUT,
) -> None:
    """Wait until the server on `port` greets with `expect`, or fail with its logs."""
    deadline = time.monotonic() + timeout
    last: Exception | str = "no answer"
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=2) as raw:
                sock: socket.socket = raw
                if tls:
                    context = ssl.create_default_context()
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                    sock = context.wrap_socket(raw, server_hostname="localhost")
                greeting = sock.recv(512)
                if greeting.startswith(expect):
                    return
                last = f"unexpected greeting {greeting!r}"
        except OSError as exc:
            last = exc
        time.sleep(0.05)
    raise ServerStartError(f"{what} did not answer on {HOST}:{port} within {timeout:.0f}s ({last})\n{logs()}")


def _tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"--- {path.name}: (none)"
    return f"--- {path.name} (last {min(lines, len(text))} lines):\n" + "\n".join(text[-lines:])


def _require_root() -> None:
    if os.geteuid() != 0:
        raise ServerStartError(
            "the test servers (Dovecot, Postfix, PostgreSQL) must be started as root; "
            f"run the tests as root, or set {SKIP_ENV}=1 to skip the tests that need them"
        )


def _require(*paths: str) -> None:
    missing = [p for p in paths if not (shutil.which(p) or os.path.exists(p))]
    if missing:
        raise ServerStartError(
            f"missing {', '.join(missing)}: install the servers with `bash scripts/setup.sh --servers`"
        )


def ensure_mail_user() -> tuple[int, int]:
    """The dedicated system user mail files belong to, created on first use; returns (uid, gid)."""
    try:
        entry = pwd.getpwnam(MAIL_USER)
    except KeyError:
        _run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", MAIL_USER],
            what="creating the mail user",
        )
        entry = pwd.getpwnam(MAIL_USER)
    return entry.pw_uid, entry.pw_gid


def make_certificate(directory: Path, group_gid: int) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1 (EC keys: quick to make)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    _run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "3", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        what="making a TLS certificate",
    )
    # Dovecot's delivery agent runs as the mail user and reads the whole config, key included.
    os.chown(key, 0, group_gid)
    key.chmod(0o640)
    cert.chmod(0o644)
    return cert, key


# --------------------------------------------------------------------------------------------- mail


@dataclass
class MailServer:
    """Dovecot (IMAP) and Postfix (SMTP) on loopback, delivering to the same Maildirs."""

    root: Path
    imap_port: int
    imaps_port: int
    smtp_port: int
    smtps_port: int
    cafile: Path
    users: dict[str, str] = field(default_factory=dict)
    host: str = HOST
    uid: int = 0
    gid: int = 0

    @property
    def dovecot_conf(self) -> Path:
        return self.root / "dovecot" / "dovecot.conf"

    @property
    def postfix_dir(self) -> Path:
        return self.root / "postfix" / "etc"

    @property
    def passwd_dir(self) -> Path:
        return self.root / "dovecot" / "users"

    def password(self, address: str) -> str:
        return self.users[address]

    def add_user(self, address: str, password: str | None = None) -> str:
        """Create a mailbox for `address`, usable at once; returns the password."""
        if ":" in address or "/" in address or "@" not in address:
            raise ValueError(f"not a mail address: {address!r}")
        password = password or f"{address.split('@')[0]}-pass"
        if address not in self.users:
            # One passwd-file per user: Dovecot opens a new file on first use, whereas it may not notice
            # a change to a shared file made within the second of its last look.
            entry = self.passwd_dir / address
            entry.write_text(f"{address}:{{PLAIN}}{password}\n")
            entry.chmod(0o644)
            self.users[address] = password
        return self.users[address]

    def maildir(self, address: str, folder: str = "INBOX") -> Path:
        """Where Dovecot keeps `folder` of `address` on disk (Maildir++: subfolders are .Name)."""
        local, domain = address.split("@")
        base = self.root / "mail" / domain / local / "Maildir"
        return base if folder.upper() == "INBOX" else base / ("." + folder.replace("/", "."))

    def messages(self, address: str, folder: str = "INBOX") -> list[bytes]:
        """The raw messages in a folder, read from disk (oldest first)."""
        base = self.maildir(address, folder)
        files = [p for sub in ("new", "cur") if (base / sub).is_dir() for p in (base / sub).iterdir()]
        return [p.read_bytes() for p in sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))]

    def wait_for_message(
        self, address: str, message_id: str, folder: str = "INBOX", timeout: float = 20.0
    ) -> bytes:
        """Wait until a message with this Message-ID lands in the folder; returns its bytes."""
        deadline = time.monotonic() + timeout
        while True:
            for raw in self.messages(address, folder):
                msg = email.message_from_bytes(raw, policy=email.policy.default)
                if (msg.get("Message-ID") or "").strip() == message_id:
                    return raw
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no message {message_id} in {address}'s {folder} after {timeout:.0f}s\n{self.logs()}"
                )
            time.sleep(0.05)

    def doveadm(self, *args: str, timeout: float = 60) -> str:
        """Run doveadm against this Dovecot (e.g. to change a folder's UIDVALIDITY)."""
        return _run(["doveadm", "-c", str(self.dovecot_conf), *args], what="doveadm", timeout=timeout).stdout

    def logs(self) -> str:
        return "\n".join(
            _tail(p)
            for p in (self.root / n for n in ("start.log", "dovecot.log", "lda.log", "postfix.log"))
        )


def _dovecot_conf(server: MailServer, run_dir: Path, cert: Path, key: Path) -> str:
    root = server.root
    return f"""\
# Test Dovecot: everything below {root}; loopback only.
instance_name = mutualplan-{server.imap_port}
base_dir = {run_dir}
state_dir = {root}/dovecot/state
listen = {HOST}
protocols = imap
log_path = {root}/dovecot.log
first_valid_uid = {server.uid}
first_valid_gid = {server.gid}
mail_location = maildir:~/Maildir
mail_fsync = never
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_dh = <{DOVECOT_DH}
# Plain LOGIN without TLS is what the loopback tests use; STARTTLS and IMAPS are there too.
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
postmaster_address = postmaster@northwind.example
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {server.passwd_dir}/%u
}}
userdb {{
  driver = static
  args = uid={server.uid} gid={server.gid} home={root}/mail/%d/%n
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {server.imap_port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {server.imaps_port}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service auth {{
  unix_listener auth-userdb {{
    mode = 0600
    user = {MAIL_USER}
    group = {MAIL_USER}
  }}
  # Postfix asks Dovecot to check SMTP AUTH passwords here.
  unix_listener {root}/run/auth-smtp {{
    mode = 0666
  }}
}}
# No growing delay after failed logins from 127.0.0.1: the tests try wrong passwords on purpose.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
# Dovecot's delivery agent runs as the mail user and reports its statistics here.
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
protocol lda {{
  log_path = {root}/lda.log
}}
"""


def _postfix_main(server: MailServer, cert: Path, key: Path) -> str:
    root = server.root
    return f"""\
# Test Postfix: everything below {root}; loopback only; every domain is delivered to Dovecot.
compatibility_level = 3.6
queue_directory = {root}/postfix/queue
data_directory = {root}/postfix/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mail.northwind.example
mydomain = northwind.example
myorigin = $myhostname
mydestination =
inet_interfaces = {HOST}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost =
alias_maps =
alias_database =
local_recipient_maps =
biff = no
append_dot_mydomain = no
readme_directory = no
smtputf8_enable = no
maillog_file_prefixes = {root}
maillog_file = {root}/postfix.log
# Every domain is ours and goes to Dovecot's delivery agent, so nothing can leave this machine;
# Dovecot refuses unknown users and Postfix bounces to the sender.
virtual_mailbox_domains = regexp:{server.postfix_dir}/domains.regexp
virtual_transport = dovecot
dovecot_destination_recipient_limit = 1
smtpd_reject_unlisted_recipient = no
default_transport = error:mail does not leave the test servers
relay_transport = error:mail does not leave the test servers
smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated reject_unauth_destination
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = {root}/run/auth-smtp
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_security_level = may
smtpd_error_sleep_time = 0s
"""


def _postfix_master(server: MailServer) -> str:
    # Debian's master.cf without chroot (the queue lives in a temp dir) and with our two listeners.
    services = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""
    return (
        f"{HOST}:{server.smtp_port} inet n - n - - smtpd\n"
        f"{HOST}:{server.smtps_port} inet n - n - - smtpd\n"
        "  -o smtpd_tls_wrappermode=yes\n"
        + services
        + f"dovecot   unix  -       n       n       -       -       pipe\n"
        f"  flags=DRhu user={MAIL_USER}:{MAIL_USER} argv={DOVECOT_LDA} -c {server.dovecot_conf}"
        " -f ${sender} -d ${recipient}\n"
    )


def _pid_alive(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


def _stop_pids(*pid_files: Path, timeout: float = 10.0) -> None:
    """SIGTERM each daemon's master (Postfix and Dovecot stop their children on it), wait, then SIGKILL."""
    pids = [pid for pid in map(_pid_alive, pid_files) if pid is not None]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if _exists(pid)]
        time.sleep(0.05)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def start_mailserver(root: Path, users: dict[str, str] | None = None) -> MailServer:
    """Start Dovecot and Postfix under `root` (an empty directory); returns where to reach them."""
    _require_root()
    _require("dovecot", "doveadm", "postfix", "openssl", DOVECOT_LDA, DOVECOT_DH)
    uid, gid = ensure_mail_user()
    root.chmod(0o755)  # the mail user and Postfix walk through it
    for sub in ("dovecot/state", "postfix/etc", "postfix/queue", "postfix/data", "mail", "run"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    os.chown(root / "mail", uid, gid)
    postfix = pwd.getpwnam("postfix")
    os.chown(root / "postfix" / "data", postfix.pw_uid, postfix.pw_gid)
    cert, key = make_certificate(root, gid)
    imap_port, imaps_port, smtp_port, smtps_port = free_ports(4)
    server = MailServer(
        root=root, imap_port=imap_port, imaps_port=imaps_port, smtp_port=smtp_port, smtps_port=smtps_port,
        cafile=cert, uid=uid, gid=gid,
    )
    server.passwd_dir.mkdir(mode=0o755)
    for address, password in (users or DEFAULT_USERS).items():
        server.add_user(address, password)
    # Dovecot's delivery agent writes its own log as the mail user.
    for log in ("lda.log",):
        (root / log).touch()
        os.chown(root / log, uid, gid)

    run_dir = root / "run" / "dovecot"
    server.dovecot_conf.write_text(_dovecot_conf(server, run_dir, cert, key))
    server.dovecot_conf.chmod(0o644)
    _start_daemon(["dovecot", "-c", str(server.dovecot_conf)], what="starting Dovecot", output=root / "start.log")
    wait_for_banner(imap_port, b"* OK", what="Dovecot IMAP", logs=server.logs)

    etc = server.postfix_dir
    (etc / "main.cf").write_text(_postfix_main(server, cert, key))
    (etc / "master.cf").write_text(_postfix_master(server))
    (etc / "domains.regexp").write_text("/./ OK\n")
    _start_daemon(["postfix", "-c", str(etc), "start"], what="starting Postfix", output=root / "start.log")
    wait_for_banner(smtp_port, b"220", what="Postfix SMTP", logs=server.logs)
    return server


def stop_mailserver(server: MailServer) -> None:
    """Stop Postfix and Dovecot together; quietly, as they may not have started."""
    _stop_pids(*_mail_pid_files(server.root))


def _mail_pid_files(root: Path) -> tuple[Path, Path]:
    return root / "postfix" / "queue" / "pid" / "master.pid", root / "run" / "dovecot" / "master.pid"


# ---------------------------------------------------------------------------------------- postgres


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster on loopback, trusting local connections."""

    root: Path
    port: int
    bin_dir: Path
    host: str = HOST
    user: str = "postgres"
    databases: list[str] = field(default_factory=list)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        _run(
            [str(self.bin_dir / "createdb"), "-h", self.host, "-p", str(self.port), "-U", self.user, name],
            what="creating a PostgreSQL database",
        )
        self.databases.append(name)
        return self.url(name)

    def logs(self) -> str:
        return _tail(self.root / "postgres.log")


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise ServerStartError("PostgreSQL is not installed: run `bash scripts/setup.sh --servers`")
    return Path(found[-1]).parent


def start_postgres(root: Path) -> PostgresServer:
    """initdb and start a cluster under `root` as the postgres user; returns where to reach it."""
    _require_root()
    bin_dir = _postgres_bin()
    try:
        pg = pwd.getpwnam("postgres")
    except KeyError as exc:
        raise ServerStartError("no `postgres` system user: install postgresql") from exc
    root.chmod(0o755)
    (port,) = free_ports(1)
    server = PostgresServer(root=root, port=port, bin_dir=bin_dir)
    data, sockets = root / "data", root / "sockets"
    data.mkdir(mode=0o700)
    sockets.mkdir()
    (root / "postgres.log").touch()
    for path in (data, sockets, root / "postgres.log"):
        os.chown(path, pg.pw_uid, pg.pw_gid)
    as_postgres = ["runuser", "-u", "postgres", "--"]
    _run(
        [*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
         "-E", "UTF8", "--no-locale", "--no-sync"],
        what="initdb",
        cwd=root,
    )
    # A test cluster: durability off for speed; loopback TCP plus a socket in our own directory.
    options = (
        f"-p {port} -k {sockets} -c listen_addresses={HOST} -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off"
    )
    try:
        _start_daemon(
            [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "postgres.log"),
             "-o", options, "-w", "-t", str(int(STARTUP_TIMEOUT)), "start"],
            what="starting PostgreSQL",
            output=root / "start.log",
            cwd=root,
        )
    except ServerStartError as exc:
        raise ServerStartError(f"{exc}\n{server.logs()}") from exc
    server.create_database("mutualplan_test")
    return server


def stop_postgres(server: PostgresServer) -> None:
    if (server.root / "data" / "postmaster.pid").exists():
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(server.bin_dir / "pg_ctl"), "-D", str(server.root / "data"),
             "-m", "immediate", "-w", "stop"],
            capture_output=True, check=False, cwd=server.root,
        )


# ---------------------------------------------------------------------------------------- fixtures


def _skip_if_asked() -> None:
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1: not starting the real servers")


@contextlib.contextmanager
def _started(kind: str, start: Callable[[Path], object], stop: Callable, prefix: str) -> Iterator:
    _skip_if_asked()
    # A short path of our own: Unix socket paths must stay under 108 bytes.
    root = Path(tempfile.mkdtemp(prefix=prefix))
    _watch(root)
    server = None
    try:
        try:
            server = start(root)
        except ServerStartError as exc:
            pytest.fail(
                f"could not start {kind}: {exc}\n(set {SKIP_ENV}=1 to skip the tests that need it)",
                pytrace=False,
            )
        yield server
    finally:
        if server is not None:
            stop(server)
        else:
            _stop_partial(root)
        shutil.rmtree(root, ignore_errors=True)


# Run beside the test session: if the session dies without its teardown (SIGKILL, a killed CI job), stop the
# servers it started and remove their directory. It ends by itself once the directory is gone.
_WATCHDOG = r"""
import os, shutil, signal, sys, time
owner, root = int(sys.argv[1]), sys.argv[2]
while os.path.isdir(root):
    try:
        os.kill(owner, 0)
    except ProcessLookupError:
        break
    time.sleep(0.5)
else:
    sys.exit(0)
for number, path in (a.split(":", 1) for a in sys.argv[3:]):
    try:
        with open(path) as f:
            os.kill(int(f.read().split()[0]), int(number))
    except (OSError, ValueError, IndexError):
        pass
time.sleep(3)
shutil.rmtree(root, ignore_errors=True)
"""


def _watch(root: Path) -> None:
    pid_files = [
        f"{int(signal.SIGTERM)}:{path}" for path in _mail_pid_files(root)
    ] + [f"{int(signal.SIGQUIT)}:{root / 'data' / 'postmaster.pid'}"]  # SIGQUIT: PostgreSQL's fast exit
    subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(root), *pid_files],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # outlives a kill of the session's process group
    )


def _stop_partial(root: Path) -> None:
    """Stop whatever a failed start left running under `root`."""
    _stop_pids(*_mail_pid_files(root))
    if (root / "data" / "postmaster.pid").exists():
        with contextlib.suppress(ServerStartError):
            bin_dir = _postgres_bin()
            subprocess.run(
                ["runuser", "-u", "postgres", "--", str(bin_dir / "pg_ctl"), "-D", str(root / "data"),
                 "-m", "immediate", "-w", "stop"],
                capture_output=True, check=False, cwd=root,
            )


@pytest.fixture(scope="session")
def mailserver() -> Iterator[MailServer]:
    """Dovecot + Postfix with the DEFAULT_USERS; add more with `mailserver.add_user(...)`."""
    with _started("Dovecot and Postfix", start_mailserver, stop_mailserver, "mp-mail-") as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster; `postgres_server.create_database(name)` gives a fresh database's URL."""
    with _started("PostgreSQL", start_postgres, stop_postgres, "mp-pg-") as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """The SQLAlchemy URL of an empty database in the session's PostgreSQL cluster."""
    return postgres_server.url("mutualplan_test")
