# ruff: noqa: E501
"""Rebuild eval/data/pii_conversational.jsonl from ../shared/data and the hand labels below.

Each entry: (corpus, record id, [(value, type), ...]). Values are located in the text in
order (a repeated value is listed once per occurrence). Types: PII ones (PERSON,
EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, ACCOUNT_NUMBER, STREET_ADDRESS) and business
ones that must stay readable (ORG, PRODUCT, LOC, URL (help and company pages), ORDER_ID,
NUMBER (versions, prices, error codes, room numbers, counting)). Not labelled either way:
Twitter @handles and profile URLs (a user name, but not a value the policy redacts), and
agents' initials ("^JS"). Every label was checked by reading the text.

Sources and licences: IBM Twitter customer care dev (Apache-2.0); DialogSum dev and train
(CC BY-NC-SA 4.0: non-commercial, used here for evaluation only, never in the product);
QMSum val (MIT).

    .venv/bin/python eval/data/build_pii_conversational.py
"""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("CONVOLENS_SHARED_DATA") or ROOT.parent / "shared" / "data")
OUT = Path(__file__).with_name("pii_conversational.jsonl")
LICENCES = {
    "twitter_customer_care": "Apache-2.0",
    "dialogsum": "CC BY-NC-SA 4.0 (evaluation only)",
    "qmsum": "MIT",
}

T, D, Q = "twitter_customer_care", "dialogsum", "qmsum"
LABELS: list[tuple[str, str, list[tuple[str, str]]]] = [
    (T, "rh7VrfdkZGpkgzU6fu98/1243246846400557057", [
        ("https://www.primevideo.com/detail/amzn1.dv.gti.3eb85fb1-6cb3-1c67-b86a-38dfbce28c23", "URL")]),
    (T, "nFelTL9B92FQuYvZfiI0/1240006024737820673", [
        ("http://mojang.com", "URL"), ("windows 10 edition", "PRODUCT")]),
    (T, "CrPhgbfBj3QN4xp2LubT/1147263952860209154", [("https://ebay.us/loBI7K", "URL")]),
    (T, "E4HBSSnTVcAh6R2Bkxyw/1244346704029274113", [("Creative Commons", "ORG")]),
    (T, "PZbUyCvGQdozAtmOPl9I/1239968376669089792", [("Mac Pro", "PRODUCT"), ("ATI Radeon HD 2600 XT", "PRODUCT"),
                ("ATI Radeon HD 4870", "PRODUCT"), ("Mac Pro", "PRODUCT")]),
    (T, "c80ynBGB8MkEafbaNvHB/1242495621220753414", [("Minecraft", "PRODUCT"), ("Windows 10", "PRODUCT"), ("Microsoft", "ORG"),
                 ("Mojang", "ORG"), ("1497421950", "ORDER_ID")]),
    (T, "6HRUKDArHAEehXB4g1ee/1227749037991919616", [("0x30005001", "NUMBER")]),
    (T, "6vez7elBAuXdWO5ENJD1/1234855873886982144", [("Windows", "PRODUCT"), ("AMD Ryzen 5 3600", "PRODUCT"),
                 ("PowerColor Radeon RX 5700 XT", "PRODUCT")]),
    (T, "J1EMca6JGW2IdQ3Zg0pT/1153654003802288128", [("Yahoo", "ORG"), ("http://sbcglobal.net", "URL")]),
    (T, "PMf5cBlTMgusv0feYw2M/1243006670554398720", [("Wells Fargo", "ORG")]),
    (T, "J3fp4IJWmugXmyqoQHta/1243262383180713992", [("https://support.google.com/youtube/answer/3037019", "URL")]),
    (T, "ul3qFoJsloh7dhKapOOG/1245709125541146626", [("lukasdewaal121@gmail.com", "EMAIL_ADDRESS")]),
    (T, "1eF19rnhJYE6YXeYBwky/994706065450242050", [("https://beta.support.xbox.com", "URL"), ("Xbox One", "PRODUCT")]),
    (T, "yj2KbZfeX2f8KadI6sbj/1240456717508284418", [("Chase Mobile", "PRODUCT")]),
    (T, "jDdyWakYL7yC5pl0qdD6/1243624627714191360", [("8-4750000030256", "ORDER_ID"), ("iOS", "PRODUCT")]),
    (T, "MU6nhoAUmvLVArfhzway/1244149626137202688", [("KTC", "ORG"), ("https://www.ebay.co.uk/ulk/itm/124128766743", "URL")]),
    (T, "btl6ofX5a6TSNB3b3rkV/1243668995494023170", [("Justin", "PERSON"), ("Adobe", "ORG")]),
    (T, "btl6ofX5a6TSNB3b3rkV/1243673445994553347", [("Justin", "PERSON"), (
        "https://community.adobe.com:443/t5/premiere-pro/faq-how-to-clear-your-cache-in-premiere-pro-2019/td-p/8324672",
        "URL"), ("Shivangi", "PERSON")]),
    (T, "SUj53n8rxql9X70x6iYp/1237713412357931010", [("joe", "PERSON"), ("south korea", "LOC"), ("minecraft", "PRODUCT"),
                 ("minecraft", "PRODUCT"), ("chfun1224@nave.com", "EMAIL_ADDRESS"),
                 ("minecraft", "PRODUCT")]),
    (T, "51S8VAIvNDac5Bq7ONQw/1240621312474824704", [("Windows", "PRODUCT"), (
        "https://support.microsoft.com/en-us/help/14238/windows-10-troubleshoot-blue-screen-errors",
        "URL"), ("Shie", "PERSON")]),
    (T, "VnDZeSkFnLaFl93vMgQf/1148602526390001664", [("Zoom", "ORG"), ("Zoom", "ORG"),
                 ("https://blog.zoom.us/wordpress/2019/07/08/response-to-video-on-concern", "URL")]),
    (T, "12TpoENmEHFDNFCdGkCt/1244392083013734401", [("https://press.hulu.com/schedule/april-2020", "URL")]),
    (T, "CO456Glw6eUA249OWH9V/1156171570747977729", [("Morgan", "PERSON")]),
    (T, "7Vpv0seSVeMeHCa2LfZj/1243501960495599616", [("Microsoft", "ORG")]),
    (T, "ueTMDRjB7oiNZ1V1zQS8/1149284371154780160", [("Yahoo", "ORG"), ("aslamsalm20@yahoo.com", "EMAIL_ADDRESS"),
                 ("01120738976", "PHONE_NUMBER")]),
    (T, "ZZldrGo4mOL4lHnhrSRC/1245016545501339649", [("Kasidy", "PERSON")]),
    (T, "LgwAXtbbEm0mBvDrGmjk/1245403438755852288", [("zekidemir089@gmail.com", "EMAIL_ADDRESS")]),
    (T, "j5pWXX19jPeAywLMd6W4/1241420540755107840", [("T-Mobile", "ORG"), ("https://www.t-mobile.com", "URL"), ("T-Mobile", "ORG")]),
    (T, "iXIhjiA28yONLSmswAir/1238599973484322822", [("minecraft", "PRODUCT"), ("http://minecraft.net", "URL"), ("Minecraft", "PRODUCT")]),
    (T, "eGPmyP8XzT1HWlzAPv2u/1242901852166991873", [("LG G8 ThinQ", "PRODUCT"), ("Android", "PRODUCT"), ("spotify", "ORG"),
                 ("8.5.50.916", "NUMBER")]),
    (T, "NjHwFnqhOzvZmk81IOuS/1224775965454348288", [
        ("Justin", "PERSON"), ("Photoshop", "PRODUCT"), ("Sahil", "PERSON")]),
    (T, "CO456Glw6eUA249OWH9V/1155958197259141122", [("Morgan", "PERSON"), ("Jen", "PERSON")]),
    (T, "6D4hthvlJ1n1aDMKNdEN/1223270377641730055", [("Mathew", "PERSON"), ("Kartika", "PERSON")]),
    (T, "CO456Glw6eUA249OWH9V/1155954627130429441", [
        ("Morgan", "PERSON"), ("Mac", "PRODUCT"), ("Caroline", "PERSON")]),
    (T, "6vez7elBAuXdWO5ENJD1/1234884823690436608", [("Premiere Pro", "PRODUCT")]),
    (T, "KbYd83daS48J0NxQrLmX/1199982783684390912", [("6-12", "NUMBER")]),
    (T, "bHTorAPXjmWvlKHakALo/1237377723422605312", [
        ("Grand Theft Auto 5", "PRODUCT"), ("3-5", "NUMBER")]),
    (T, "vYQ6LOATkG8hhHZhOwA3/1158171051974639616", [("Knack 2", "PRODUCT"), ("8-1", "NUMBER")]),
    (T, "Y4amt2xyanlRzRZDoipK/1240801394287878144", [("3-4", "NUMBER")]),
    (D, "dev_15/3", [("George", "PERSON")]),
    (D, "dev_38/6", [("Schroder", "PERSON")]),
    (D, "dev_67/6", [("Monica", "PERSON")]),
    (D, "dev_117/1", [("Lucy", "PERSON"), ("Monica", "PERSON")]),
    (D, "dev_353/7", [("Stern", "PERSON")]),
    (D, "dev_34/2", [("Anderson", "PERSON")]),
    (D, "dev_38/4", [("Schroder", "PERSON"), ("Cruise", "PERSON"), ("Schroder", "PERSON")]),
    (D, "dev_124/0", [("Adams", "PERSON")]),
    (D, "dev_374/6", [("117", "NUMBER"), ("Terry Chen", "PERSON")]),
    (D, "dev_117/0", [("ABC Company", "ORG"), ("Lucy", "PERSON")]),
    (D, "dev_151/14", [("626-555-1739", "PHONE_NUMBER")]),
    (D, "dev_397/11", [("Nancy Brown", "PERSON"), ("7096785634", "PHONE_NUMBER"), ("Nancy Brown", "PERSON")]),
    (D, "dev_448/7", [("Anderson", "PERSON"), ("Billy", "PERSON"), ("Billy", "PERSON"), ("Anderson", "PERSON")]),
    (D, "dev_38/7", [("0181 945 8719", "PHONE_NUMBER")]),
    (D, "dev_198/1", [("George Damon", "PERSON"), ("200", "NUMBER")]),
    (D, "dev_353/1", [("Stern", "PERSON"), ("Hao Bo", "PERSON"), ("International Travel Agency", "ORG")]),
    (D, "dev_34/1", [("John Keat", "PERSON")]),
    (D, "dev_123/5", [("367 - 1314", "PHONE_NUMBER")]),
    (D, "dev_474/5", [("2980. 00", "NUMBER"), ("2, 699. 00", "NUMBER")]),
    (D, "dev_483/2", [("Brown", "PERSON"), ("Ted", "PERSON")]),
    (D, "dev_299/3", [("Bill", "PERSON")]),
    (D, "dev_483/0", [("Susan", "PERSON"), ("Brown", "PERSON")]),
    (D, "dev_158/1", [("Seymour", "PERSON"), ("Allan Parker", "PERSON")]),
    (D, "dev_485/12", [("Bradley", "PERSON"), ("1020", "NUMBER"), ("$90", "NUMBER")]),
    (D, "dev_335/1", [("8:30", "NUMBER"), ("Turner", "PERSON"), ("MG Company", "ORG")]),
    (D, "train_9647/13", [("five-five-eight six-zero-one-six", "PHONE_NUMBER"), ("558-6016", "PHONE_NUMBER")]),
    (D, "train_6869/12", [("zero, double seven, eight, seven, three, six, seven, double six, double eight",
                           "PHONE_NUMBER")]),
    (D, "train_9647/5", [("six-one-four one-four-eight-zero", "PHONE_NUMBER"), ("614-1480", "PHONE_NUMBER")]),
    (D, "train_9647/3", [("eight eight-seven-zero zero-zero-one-nine", "PHONE_NUMBER"),
                         ("870-0019", "PHONE_NUMBER")]),
    (D, "train_7194/3", [("mark889@gmail.com", "EMAIL_ADDRESS")]),
    (D, "train_7709/9", [("bwhite@uk.net", "EMAIL_ADDRESS"), ("0782-403583", "PHONE_NUMBER"),
                         ("0782-624989", "PHONE_NUMBER")]),
    (D, "train_9657/12", [("1553 Palace Street", "STREET_ADDRESS")]),
    (D, "train_9207/6", [("45 Station Road", "STREET_ADDRESS")]),
    (D, "train_1872/7", [("1446 Pine Street", "STREET_ADDRESS")]),
    (D, "train_11145/9", [("James Park", "PERSON"), ("43 Apple Street", "STREET_ADDRESS"), ("6:30", "NUMBER")]),
    (D, "train_7709/7", [("89 Sea Road", "STREET_ADDRESS"), ("Swansea", "LOC")]),
    (D, "train_11339/9", [("Holiday Sun Hotel", "ORG"), ("0708112", "PHONE_NUMBER"), ("1203", "NUMBER"),
                          ("100 Teckman Street", "STREET_ADDRESS")]),
    (D, "train_4000/7", [("Mike Kowalski", "PERSON"), ("5211678 44", "CREDIT_CARD")]),
    (D, "train_6088/9", [("794791", "ACCOUNT_NUMBER")]),
    (D, "train_4966/5", [("Bob Brown", "PERSON")]),
    (D, "train_5724/3", [("Patrick Dean", "PERSON"), ("D-E-A-N", "PERSON"), ("15273478841", "ACCOUNT_NUMBER"),
                         ("20, 000", "NUMBER")]),
    (Q, "Bmr026/521", [("ROVER", "PRODUCT"), ("ROVER", "PRODUCT")]),
    (Q, "covid_6/219", [("Davies", "PERSON")]),
    (Q, "covid_2/108", [("Barlow", "PERSON")]),
    (Q, "Bmr012/31", [("Jane", "PERSON")]),
    (Q, "Bmr026/435", [("Liz", "PERSON"), ("Jane", "PERSON")]),
    (Q, "covid_2/329", [("Duvall", "PERSON")]),
    (Q, "covid_2/363", [("Government of Canada", "ORG")]),
    (Q, "Bmr005/606", [("IBM", "ORG"), ("IBM", "ORG")]),
    (Q, "ES2009a/232", [("La Jolla", "LOC")]),
    (Q, "ES2006d/787", [("Jen", "PERSON")]),
    (Q, "ES2009b/84", [("Ron", "PERSON")]),
    (Q, "Bmr026/700", [("Cambridge", "ORG")]),
    (Q, "Bro022/340", [("Aurora", "PRODUCT")]),
    (Q, "TS3009b/790", [("one two three four five six six seven eight nine zero", "NUMBER")]),
]  # fmt: skip


def _twitter() -> dict[str, str]:
    records = json.loads((DATA / "support/twitter_customer_care/dev.json").read_text())
    return {
        f"{c['dialogHeader']['sessionID']}/{m['tweet_ID']}": m["message"]
        for c in records
        for m in c["dialogContent"]
    }


def _dialogsum() -> dict[str, str]:
    out = {}
    dev = (DATA / "summaries/dialogsum/dialogsum.dev.jsonl").read_text().splitlines()
    train = (DATA / "summaries/dialogsum/train_rev2021-05-26/dialogsum.train.jsonl").read_text()
    for record in [json.loads(x) for x in dev] + [
        ast.literal_eval(x) for x in train.splitlines() if x.strip()
    ]:
        for i, line in enumerate(record["dialogue"].split("\n")):
            out[f"{record['fname']}/{i}"] = re.sub(r"^#Person\d#:\s*", "", line)
    return out


def _qmsum() -> dict[str, str]:
    out = {}
    for path in sorted((DATA / "meetings/qmsum/val").glob("*.json")):
        record = json.loads(path.read_text())
        for i, turn in enumerate(record["meeting_transcripts"]):
            out[f"{path.stem}/{i}"] = turn["content"]
    return out


def main() -> None:
    texts = {T: _twitter(), D: _dialogsum(), Q: _qmsum()}
    lines = []
    for corpus, record_id, labels in LABELS:
        text = texts[corpus][record_id]
        spans, cursor = [], 0
        for value, kind in labels:
            at = text.find(value, cursor)
            if at < 0:
                at = text.find(value)
            if at < 0:
                raise SystemExit(f"{corpus}/{record_id}: {value!r} not in the text")
            spans.append({"start": at, "end": at + len(value), "type": kind, "value": value})
            cursor = at + len(value)
        lines.append(
            json.dumps(
                {
                    "id": f"{corpus}/{record_id}",
                    "licence": LICENCES[corpus],
                    "text": text,
                    "spans": sorted(spans, key=lambda s: s["start"]),
                },
                ensure_ascii=False,
            )
        )
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(lines)} texts")


if __name__ == "__main__":
    main()
