"""Check that the C# toolchain and the sandbox tool are present and usable."""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
from pathlib import Path

from ..errors import UserError

log = logging.getLogger(__name__)

DEBIAN_PACKAGES = {
    "mcs": "mono-mcs",
    "mono": "mono-runtime",
    "System.Numerics.dll": "libmono-system-numerics4.0-cil",
    "bwrap": "bubblewrap",
    "prlimit": "util-linux",
    "setpriv": "util-linux",
}
NUMERICS_DLL = Path("/usr/lib/mono/4.5/System.Numerics.dll")


class ToolchainError(UserError, RuntimeError):
    pass


def _missing() -> list[str]:
    missing = [tool for tool in ("mcs", "mono", "bwrap", "prlimit") if shutil.which(tool) is None]
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        missing.append("setpriv")
    if not NUMERICS_DLL.exists():
        missing.append("System.Numerics.dll")
    return missing


@functools.lru_cache(maxsize=1)
def check_toolchain() -> None:
    """Raise ToolchainError naming the Debian packages to install if anything is missing.

    Also checks that bubblewrap can build a sandbox here (it needs unprivileged user
    namespaces when not root) and warns about the degraded mode when not root.
    """
    missing = _missing()
    if missing:
        pkgs = sorted({DEBIAN_PACKAGES[m] for m in missing})
        raise ToolchainError(
            f"missing C# toolchain/sandbox pieces: {', '.join(missing)}; "
            f"install with: apt-get install -y {' '.join(pkgs)}"
        )
    probe = ["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr"]
    for d in ("/lib", "/lib64", "/bin"):
        if Path(d).is_symlink():
            probe += ["--symlink", os.readlink(d), d]
        elif Path(d).is_dir():
            probe += ["--ro-bind", d, d]
    probe += ["--", "/usr/bin/true"]
    if os.geteuid() == 0:
        # The real sandbox runs under an unprivileged uid: probe exactly that.
        probe = ["setpriv", "--reuid=61000", "--regid=61000", "--clear-groups", "--"] + probe
    r = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise ToolchainError(
            "bubblewrap cannot create a sandbox here (it needs unprivileged user "
            "namespaces: sysctl kernel.unprivileged_userns_clone=1 / "
            f"user.max_user_namespaces>0): {r.stderr.strip()[:300]}"
        )
    if os.geteuid() != 0:
        log.warning(
            "C# sandbox in degraded mode (not root): programs run under your own uid, so "
            "RLIMIT_NPROC counts all your processes and only bounds thread/fork bombs "
            "loosely; run as root for a dedicated sandbox uid per worker."
        )
