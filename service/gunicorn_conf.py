"""The gunicorn configuration `photocheck serve` runs with (``-c python:service.gunicorn_conf``).

Settings come from ``PHOTOCHECK_*`` environment variables, which ``photocheck serve`` sets from its
options. The access log holds no client address unless PHOTOCHECK_LOG_CLIENT_IP is on, and never a
query string, referrer or user agent.
"""

import os
import shutil
import sys

# Nothing is written while answering, not even a bytecode cache for a late import.
sys.dont_write_bytecode = True


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


bind = os.environ.get("PHOTOCHECK_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("PHOTOCHECK_WORKERS", "2"))
# Threads receive requests, one check at a time runs per process, and each request must arrive
# within a deadline: service/worker.py says why, bench/slow_clients.py measured it.
worker_class = "service.worker.PhotocheckWorker"
threads = int(os.environ.get("PHOTOCHECK_THREADS", "32"))
timeout = int(os.environ.get("PHOTOCHECK_TIMEOUT", "60"))
graceful_timeout = 30
# Each worker loads the index and models itself, before it accepts connections; on `kill -HUP`
# new workers load the changed index while the old ones finish their requests.
preload_app = False
accesslog = "-"
errorlog = "-"
access_log_format = ("%(h)s " if _flag("PHOTOCHECK_LOG_CLIENT_IP") else "") + '%(t)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'
# Forwarded headers are trusted only from proxies the operator names.
forwarded_allow_ips = os.environ.get("PHOTOCHECK_FORWARDED_ALLOW_IPS", "127.0.0.1")
# No control socket: it would be a file the service creates, and HUP/TERM already do the job.
control_socket_disable = True
# Static files are written like any answer rather than with sendfile(), which gunicorn leaves out
# of the access log's size (it logged 0 bytes for them); they are a few kilobytes each.
sendfile = False
# The worker heartbeat file lives in memory where the host has /dev/shm.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None


# -- Prometheus metrics (PHOTOCHECK_METRICS, service/metrics.py) ------------------------------------
# Each worker keeps its values in memory-mapped files, in a folder on tmpfs: emptied when the server
# starts, removed when it stops, a dead worker's live gauges dropped. The folder is named after the
# master, so a `kill -HUP` (which reads this file again in the same master) keeps it.
if _flag("PHOTOCHECK_METRICS"):
    _metrics_root = os.environ.get("PHOTOCHECK_METRICS_DIR") or ("/dev/shm" if os.path.isdir("/dev/shm") else None)
    if _metrics_root is None:
        raise SystemExit(
            "PHOTOCHECK_METRICS needs a folder in memory for its per-worker files: this host has no /dev/shm; "
            "set PHOTOCHECK_METRICS_DIR to a tmpfs folder."
        )
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.path.join(_metrics_root, f"photocheck-metrics-{os.getpid()}")


def on_starting(server) -> None:
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)  # values of an earlier master with the same pid
        os.makedirs(folder, mode=0o700)


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
