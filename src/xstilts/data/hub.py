"""Tasks read from the Hugging Face hub with ``datasets.load_dataset``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xstilts.errors import UserError


@dataclass(frozen=True)
class HubSource:
    """One hub dataset: ``config(split, lang)`` and ``split_name(split, lang)`` pick what to load, ``convert``
    turns a hub record into an xstilts example (it must set "id")."""

    dataset: str
    config: Callable[[str, str], str | None]
    split_name: Callable[[str, str], str]
    convert: Callable[[dict, str], dict]  # (record, language) -> example
    langs: tuple[str, ...]
    label_set: tuple[str, ...] | None = None
    revision: str | None = None

    def languages(self) -> tuple[str, ...]:
        return self.langs

    def labels(self) -> tuple[str, ...] | None:
        return self.label_set

    def load(self, split: str, language: str) -> list[dict]:
        import datasets

        config, hub_split = self.config(split, language), self.split_name(split, language)
        try:
            records = datasets.load_dataset(self.dataset, config, split=hub_split, revision=self.revision)
        except Exception as e:  # noqa: BLE001  (offline, missing config, auth: all one line for the user)
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UserError(
                f"hub dataset {self.dataset} (config {config}, split {hub_split}): cannot load ({first}); "
                "without hub access, set data_dir to the official files"
            ) from None
        return [self.convert(r, language) for r in records]

    def checksum(self, split: str, language: str) -> str:
        config, hub_split = self.config(split, language), self.split_name(split, language)
        return f"hub:{self.dataset}:{config}:{hub_split}:{self.revision or 'main'}"

    def describe(self) -> str:
        return f"hub:{self.dataset}"
