"""cwpo's benchmarks, one folder per study: ``python -m benchmarks.<study>.<script>`` (README.md).

The benches run offline (every model and data set is local). These defaults are set here, before
any bench module imports ``transformers`` or ``huggingface_hub``, which read them at import time;
so is torch's huge-page setting (:mod:`cwpo.hugepages`, read at the first tensor allocation).
"""

import os

from cwpo import hugepages

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
hugepages.choose()
