"""Socket activation the way systemd does it (Accept=no), for tests and the demo where systemd is not
PID 1: hold a listening AF_UNIX socket, start the service with the socket as fd 3 (LISTEN_FDS=1,
LISTEN_PID=<its pid>, LISTEN_FDNAMES) when a client connects and the service is not running, and
start it again on the next connection after it exited (e.g. exit-on-idle).

    with Activator("/run/x/io.switchyard.Slots", ["slot-manager", "varlink", "--disk=img"]) as a:
        ...            # a.starts counts how often the service was started; a.log holds its stderr

Command-line use (tools/demo): python3 activator.py SOCKET -- COMMAND ARGS...
"""
import os
import select
import signal
import socket
import subprocess
import sys
import threading


class Activator:
    def __init__(self, path, argv, env=None, log_path=None, mode=0o600):
        self.path = str(path)
        self.argv = [str(a) for a in argv]
        self.env = dict(os.environ if env is None else env)
        self.log_path = log_path
        self.mode = mode
        self.starts = 0
        self.exit_codes = []
        self.proc = None
        self._stop = False
        self._thread = None
        self.sock = None

    def start(self):
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        os.chmod(self.path, self.mode)
        self.sock.listen(512)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _spawn(self):
        fd = self.sock.fileno()
        env = dict(self.env, LISTEN_FDS="1", LISTEN_FDNAMES=os.path.basename(self.path))
        env.pop("LISTEN_PID", None)
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL

        def child_setup():
            # The socket must be fd 3 in the child, and stay open across exec. close_fds is off
            # because it would run after this and close fd 3 again; Python's own fds are not
            # inheritable, so nothing else leaks.
            if fd != 3:
                os.dup2(fd, 3)
            os.set_inheritable(3, True)

        # LISTEN_PID must name the service itself; a shell sets it to its own pid, then execs.
        argv = ["/bin/sh", "-c", 'export LISTEN_PID=$$; exec "$@"', "activator"] + self.argv
        self.proc = subprocess.Popen(argv, env=env, preexec_fn=child_setup, close_fds=False,
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        if log is not subprocess.DEVNULL:
            log.close()
        self.starts += 1

    def _loop(self):
        while not self._stop:
            if self.proc is not None:
                rc = self.proc.poll()
                if rc is None:
                    select.select([], [], [], 0.05)
                    continue
                self.exit_codes.append(rc)
                self.proc = None
            r, _, _ = select.select([self.sock], [], [], 0.05)
            if r and not self._stop:
                self._spawn()

    def stop(self):
        self._stop = True
        if self._thread:
            self._thread.join()
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.exit_codes.append(self.proc.returncode)
            self.proc = None
        if self.sock:
            self.sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        print("usage: activator.py SOCKET -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    a = Activator(sys.argv[1], sys.argv[3:], log_path=os.environ.get("ACTIVATOR_LOG"))
    a.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        a.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
