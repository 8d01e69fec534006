"""Tests of the moto extension against a running moto with it (``scripts/local-cloud up``):
``python -m unittest discover -s scripts/moto_ext/tests -t scripts`` with
``AWS_ENDPOINT_URL`` aimed at it (``scripts/test`` runs them)."""
