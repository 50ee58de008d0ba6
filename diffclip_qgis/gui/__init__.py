"""The desktop side: dock widget, sample map tool and background task.

Every user-visible string goes through :func:`tr` (context ``DiffClipDock``); the Chinese
translations live in ``i18n/diffclip_zh_CN.ts``.
"""
from qgis.PyQt.QtCore import QCoreApplication

CONTEXT = "DiffClipDock"


def tr(text: str) -> str:
    """Translate a user-visible string of the dock and its helpers."""
    return QCoreApplication.translate(CONTEXT, text)
