"""The project's Jupyter kernel, registered in this environment; papermill and JupyterLab use it."""

from __future__ import annotations

import sys
from pathlib import Path

from research.config import KERNEL_NAME

DISPLAY_NAME = "Python (Regime Lab)"


def ensure_kernel(name: str = KERNEL_NAME) -> Path:
    """Register the kernel ``name`` for this Python (``sys.prefix``) unless it already points here.

    Returns
    -------
    pathlib.Path
        The kernelspec folder.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    def _current() -> Path | None:
        try:
            spec = KernelSpecManager().get_kernel_spec(name)
        except NoSuchKernel:
            return None
        here = Path(sys.executable).absolute()
        if spec.argv and Path(spec.argv[0]).absolute() == here:
            return Path(spec.resource_dir)
        return None

    found = _current()
    if found is not None:
        return found
    from ipykernel.kernelspec import install

    installed = Path(install(kernel_name=name, display_name=DISPLAY_NAME, prefix=sys.prefix))
    if _current() is None:
        shadow = KernelSpecManager().get_kernel_spec(name).resource_dir
        raise RuntimeError(
            f"kernel {name!r} at {shadow} points to another Python and shadows the one just "
            f"installed at {installed}; remove it (jupyter kernelspec remove {name})"
        )
    return installed


if __name__ == "__main__":  # python -m research.pipeline.kernel
    print(f"kernel {KERNEL_NAME!r} registered at {ensure_kernel()}")
