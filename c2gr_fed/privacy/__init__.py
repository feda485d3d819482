"""What crosses the wire: the declared schema, the guard, the tamper-evident log, the memorisation audit."""

from .schema import Violation, WireSchema
from .transfer_log import TransferLog, read_log, verify_chain
from .wire import ArrayInfo, MessageInfo, RecordInfo

__all__ = ["ArrayInfo", "MessageInfo", "RecordInfo", "TransferLog", "Violation", "WireSchema", "read_log", "verify_chain"]
