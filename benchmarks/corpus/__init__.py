"""The corpus benchmark: 60 task specs, dense-grid ground truth, curve regret, peers.

``python -m benchmarks.corpus --help`` lists the commands.
"""
