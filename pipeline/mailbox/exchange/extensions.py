"""What we teach exchangelib: our named properties on Message, and a retry policy with a bounded total wait."""

from __future__ import annotations

from typing import Any

# The headers we stamp on replies through EWS properties (MIME-built messages carry them in their bytes).
STAMPED_HEADERS = ("X-Mutual-Plan", "X-Auto-Response-Suppress", "Auto-Submitted")

_registered = False


def register_properties() -> None:
    """Teach exchangelib's Message our named properties (once per process; the registry is global)."""
    global _registered
    if _registered:
        return
    from exchangelib import ExtendedProperty, Message

    def header(name: str) -> type:
        # A header in the PS_INTERNET_HEADERS set: transport writes it into the sent MIME.
        return type(f"_Header_{name.replace('-', '_')}", (ExtendedProperty,), {
            "distinguished_property_set_id": "InternetHeaders", "property_name": name, "property_type": "String",
        })

    class OurMessageId(ExtendedProperty):
        # Our Message-ID kept on the item itself: it follows the item into Sent Items whatever Exchange puts
        # in the Message-ID header, so was_sent() can always find what we sent.
        distinguished_property_set_id = "PublicStrings"
        property_name = "MutualPlanMessageId"
        property_type = "String"

    Message.register("mutualplan_message_id", OurMessageId)
    for name in STAMPED_HEADERS:
        Message.register(header_field(name), header(name))
    _registered = True


def header_field(name: str) -> str:
    """The attribute name on Message of the property that carries this header."""
    return "mutualplan_hdr_" + name.lower().replace("-", "_")


def retry_policy(max_wait: float) -> Any:
    """A fault-tolerant retry policy whose waits add up to at most `max_wait` per adapter call."""
    from exchangelib.errors import RateLimitError, UnauthorizedError
    from exchangelib.protocol import FaultTolerance

    class BoundedRetry(FaultTolerance):
        """FaultTolerance whose back-offs add up to at most `max_wait` per adapter call, and whose 401 is final.

        exchangelib bounds each single back-off but not their sum, and under a fault-tolerant policy it reads
        HTTP 401 as throttling and retries it; a refused password should fail at once instead.
        """

        def __init__(self) -> None:
            super().__init__(max_wait=max_wait)
            self.spent = 0.0

        def start(self) -> None:
            self.spent = 0.0

        def back_off(self, seconds: float | None) -> None:
            seconds = self.DEFAULT_BACKOFF if seconds is None else seconds
            if self.spent + seconds > self.max_wait:
                raise RateLimitError("Max timeout reached", wait=self.spent + seconds)
            self.spent += seconds
            super().back_off(seconds)

        def raise_response_errors(self, response: Any) -> None:
            if response.status_code == 401:
                raise UnauthorizedError(f"Invalid credentials for {response.url}")
            super().raise_response_errors(response)

    return BoundedRetry()
