"""Streaming streammetric metrics out of training frameworks, keeping no predictions.

Each integration is a submodule that imports its framework when it is itself imported (never
by ``import streammetric`` nor by this package):

* `streammetric.integrations.lightning`: `StreamMetricCallback`, a PyTorch Lightning callback
  (``pip install streammetric[lightning]``);
* `streammetric.integrations.keras`: `StreamMetric`, a Keras 3 metric
  (``pip install streammetric[keras]``);
* `streammetric.integrations.huggingface`: `StreamMetricComputer`, a ``compute_metrics`` for
  the Hugging Face ``Trainer`` with ``batch_eval_metrics=True``
  (``pip install streammetric[huggingface]``).

Each updates streammetric metrics batch by batch (their state is exact sums and counts, the
same size whatever the number of batches) and reads them at the end of the evaluation.
"""
