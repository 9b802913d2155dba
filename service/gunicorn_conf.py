"""The gunicorn configuration `photocheck serve` runs with (``-c python:service.gunicorn_conf``).

Settings come from ``PHOTOCHECK_*`` environment variables, which ``photocheck serve`` sets from its
options. The access log holds no client address unless PHOTOCHECK_LOG_CLIENT_IP is on, and never a
query string, referrer or user agent.
"""

import os
import sys

# Nothing is written while answering, not even a bytecode cache for a late import.
sys.dont_write_bytecode = True


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


bind = os.environ.get("PHOTOCHECK_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("PHOTOCHECK_WORKERS", "2"))
worker_class = "sync"  # the checks are CPU-bound; one at a time per worker process
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
# The worker heartbeat file lives in memory where the host has /dev/shm.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
