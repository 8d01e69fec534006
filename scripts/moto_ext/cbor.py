"""Decoding a Smithy RPC v2 CBOR request body (the protocol the Rust SDK
speaks to CloudWatch), shared by ``cloudwatch_cbor`` (which serves it) and
``iam_targets`` (which reads an alarm call's names to authorize it). A leaf:
it imports nothing of the extension."""

from typing import Any

from botocore.parsers import BaseCBORParser


class Decoder(BaseCBORParser):
    def decode(self, body: bytes) -> Any:
        if not body:
            return {}
        return self.parse_data_item(self.get_peekable_stream_from_bytes(body))
