"""XTREME and XTREME-R retrieval and multiple-choice tasks: tatoeba, bucc2018, lareqa, mewslix, xcopa,
and the English siqa and copa that XTREME-R trains XCOPA on.

Record schemas and official layouts: ``xstilts.data.official_retrieval``. The hub copies of BUCC (gold
pairs only), XQuAD-R (no sentence breaks) and Mewsli-X (none) cannot reproduce the official evaluation,
so those three read only ``data_dir``. XTREME-R's XCOPA protocol trains on SIQA, then COPA, then tests
zero-shot: xcopa trains on copa; set ``intermediate: siqa`` for the first stage. The English fine-tuning
data of lareqa (SQuAD retrieval) and mewslix (Mewsli-X Wikipedia pairs) is not defined here.
"""

from xstilts.data import official_retrieval as files
from xstilts.data.hub import HubSource
from xstilts.data.official_retrieval import LocalOnly, NumberedHub
from xstilts.data.sources import splits
from xstilts.tasks import protocol
from xstilts.tasks.definition import TaskDef

TASKS = (
    TaskDef(
        "tatoeba",
        "retrieval",
        "target",
        "accuracy",
        NumberedHub(
            "google/xtreme",
            lambda s, lang: f"tatoeba.{files.iso3(lang)}",
            splits("tatoeba", test="validation"),
            files.tatoeba_from_hub,
            files.TATOEBA_HUB_LANGS,
        ),
        fields=("target", "source"),  # official direction: English queries, the other language indexed
        local=files.tatoeba_files,
        protocol=protocol.RETRIEVAL,
        parallel=True,  # pairs keyed by their English side
    ),
    TaskDef(
        "bucc2018",
        "bucc",
        "target",
        "bucc_f1",
        LocalOnly(
            "bucc2018",
            files.BUCC_LANGS,
            "the hub copy (google/xtreme bucc18.*) holds only the gold pairs, not the corpora to mine",
        ),
        local=files.bucc_files,
        protocol=protocol.RETRIEVAL,
    ),
    TaskDef(
        "lareqa",
        "answer_retrieval",
        "target",
        "map@20",
        LocalOnly(
            "lareqa",
            files.LAREQA_LANGS,
            "the hub copy (google-research-datasets/xquad_r) drops the sentence breaks that make the candidates",
        ),
        local=files.lareqa_files,
        protocol=protocol.RETRIEVAL,
    ),
    TaskDef(
        "mewslix",
        "answer_retrieval",
        "target",
        "map@20",
        LocalOnly("mewslix", files.MEWSLIX_LANGS, "Mewsli-X is not on the hub (get-mewsli-x.sh rebuilds it)"),
        local=files.mewslix_files,
        protocol=protocol.RETRIEVAL,
    ),
    TaskDef(
        "xcopa",
        "multiple_choice",
        "target",
        "accuracy",
        HubSource(
            "cambridgeltl/xcopa",
            lambda s, lang: lang,
            splits("xcopa", dev="validation", test="test"),
            files.copa_from_hub,
            files.XCOPA_LANGS,
        ),
        fields=("question", "choices"),
        train_task="copa",
        local=files.xcopa_files,
        protocol=protocol.CLASSIFICATION,
        parallel=True,  # COPA's items translated, each keeping its idx
    ),
    TaskDef(
        "copa",
        "multiple_choice",
        "intermediate",
        "accuracy",
        HubSource(
            "aps/super_glue",
            lambda s, lang: "copa",
            splits("copa", train="train", dev="validation"),
            files.copa_from_hub,
            ("en",),
        ),
        fields=("question", "choices"),
        local=files.copa_files,
    ),
    TaskDef(
        "siqa",
        "multiple_choice",
        "intermediate",
        "accuracy",
        NumberedHub(
            "allenai/social_i_qa",
            lambda s, lang: None,
            splits("siqa", train="train", dev="validation"),
            files.siqa_from_hub,
            ("en",),
        ),
        fields=("question", "choices"),
        local=files.siqa_files,
    ),
)
