"""Find and run the zodbfs binaries that this package installs.

The wheel installs two programs into the environment's scripts directory (``bin/``):
``zodbfs`` and ``zodbfs-repozo``, a drop-in for ZODB's ``repozo`` under a name of its own,
so that it never replaces the ``repozo`` that ZODB installs in the same environment. This
package holds a copy of both in ``zodbfs/bin/``, for installers that keep only the package
(buildout turns wheels into eggs and drops their scripts).

Tools that only install Python entry points (buildout's ``zc.recipe.egg``) can still
make a script that runs them, under any name::

    [repozo]
    recipe = zc.recipe.egg
    eggs = zodbfs
    entry-points = repozo=zodbfs:repozo
    scripts = repozo

``bin/repozo`` then runs ``zodbfs-repozo`` with the same arguments.
"""

import os
import stat
import sys
import sysconfig

__all__ = ["find_bin", "main", "repozo"]

_NAMES = ("zodbfs", "zodbfs-repozo")


def _candidates(name):
    """The places the binary can be: this package's copy first (the same build as this
    module), then the scripts directories pip and uv install it into."""
    exe = name + (".exe" if os.name == "nt" else "")
    here = os.path.dirname(os.path.abspath(__file__))
    dirs = [os.path.join(here, "bin"), sysconfig.get_path("scripts")]
    user_scheme = {"nt": "nt_user", "posix": "posix_user"}.get(os.name)
    if user_scheme and user_scheme in sysconfig.get_scheme_names():
        dirs.append(sysconfig.get_path("scripts", user_scheme))
    # pip install --target DIR: DIR/zodbfs/ and DIR/bin/.
    dirs.append(os.path.join(os.path.dirname(here), "bin"))
    # The environment that holds this package, when another Python imports it:
    # <prefix>/lib/pythonX.Y/site-packages/zodbfs/ and <prefix>/bin/.
    dirs.append(os.path.join(here, os.pardir, os.pardir, os.pardir, os.pardir, "bin"))
    seen = []
    for d in dirs:
        if d:
            path = os.path.normpath(os.path.join(d, exe))
            if path not in seen:
                seen.append(path)
    return seen


def find_bin(name="zodbfs"):
    """The absolute path of the installed binary ``zodbfs`` or ``zodbfs-repozo``.

    Raises FileNotFoundError naming the places searched when it is not installed.
    """
    if name not in _NAMES:
        raise ValueError("unknown binary %r (expected one of %s)" % (name, ", ".join(_NAMES)))
    searched = _candidates(name)
    for path in searched:
        if os.path.isfile(path):
            if not os.access(path, os.X_OK) and os.name == "posix":
                # Unpacking a wheel into an egg (buildout) drops the mode bits.
                try:
                    mode = os.stat(path).st_mode
                    os.chmod(path, mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
                except OSError:
                    continue
            return path
    raise FileNotFoundError(
        "%s is not installed; looked in: %s" % (name, ", ".join(searched))
    )


def _run(name, argv0):
    """Replace this process by the binary, called ``argv0``, with this script's arguments."""
    path = find_bin(name)
    argv = [argv0] + sys.argv[1:]
    if os.name == "posix":
        os.execv(path, argv)
    import subprocess

    sys.exit(subprocess.call([path] + argv[1:]))


def main():
    """Run ``zodbfs`` (``python -m zodbfs``)."""
    _run("zodbfs", "zodbfs")


def repozo():
    """Run ``zodbfs-repozo``, for a script named ``repozo`` made by buildout.

    The binary sees this script's path as its name, as Python repozo does (usage texts).
    """
    _run("zodbfs-repozo", sys.argv[0] if sys.argv and sys.argv[0] else "repozo")
