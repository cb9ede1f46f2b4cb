# Where uv takes the CPU torch wheel from (sourced by setup.sh, ci_drift.sh and lock.sh): a local
# wheel where the machine has one (pip's find-links), else PyTorch's CPU index.  A PyPI torch
# would pull several GB of CUDA packages.
WHEELS=${PIP_FIND_LINKS:-/opt/wheels}
if ls "$WHEELS"/torch-*.whl >/dev/null 2>&1; then
  TORCH_SOURCE=(--find-links "$WHEELS")
else
  TORCH_SOURCE=(--extra-index-url https://download.pytorch.org/whl/cpu
                --index-strategy unsafe-best-match)
fi
