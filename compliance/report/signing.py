"""Signing a report's PDF (PAdES, with pyHanko) and validating a signed one, offline.

Signing: `load_signer(KEY.p12, passphrase, tsa_url)` reads the signer's key and certificate first, so page 1 can
name the signer (their certificate's common name and organisation) before the PDF exists; `Signer.sign(pdf)`
then adds one PAdES signature (SHA-256, the certificate chain embedded) and, with a time-stamping authority, an
RFC 3161 timestamp on it. The passphrase is handed in as bytes: the command line takes it from
IDIA_SIGN_PASSPHRASE or a prompt, never from an argument, and it is written nowhere.

Validating: `signature_findings(pdf, trust)` checks every signature: intact (the signed bytes hash to what was
signed), valid (the signature over them checks with the signer's key), covering the whole file (nothing added
after signing), and trusted only against the roots given (`--trust`): with none, trust is not judged and
says so; the system's trust store is never read and nothing is fetched (revocation is not checked offline).

pyHanko is imported inside the functions: importing this module costs nothing.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path

from idia.compliance.report.frame import SignatureBlock
from idia.errors import InputError
from idia.io import read_regular_bytes

PASSPHRASE_ENV = "IDIA_SIGN_PASSPHRASE"
FIELD_NAME = "idia-signature"
MAX_KEY_BYTES = 1 << 20
TSA_TIMEOUT_S = 30


def _name_part(name, oid: str) -> str | None:
    value = name.native.get(oid)
    if isinstance(value, list):
        value = ", ".join(map(str, value))
    return str(value) if value else None


@dataclass
class Signer:
    """A loaded PKCS#12 signer: what page 1 says about it (`block`) and `sign`."""

    simple_signer: object
    block: SignatureBlock
    tsa_url: str | None = None

    def sign(self, pdf: bytes) -> bytes:
        """The PDF with one PAdES signature (and an RFC 3161 timestamp when a TSA was given)."""
        from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
        from pyhanko.sign import signers
        from pyhanko.sign.fields import SigSeedSubFilter
        meta = signers.PdfSignatureMetadata(field_name=FIELD_NAME, subfilter=SigSeedSubFilter.PADES,
                                            md_algorithm="sha256", embed_validation_info=False,
                                            name=self.block.name, reason="idia evidence report")
        timestamper = None
        if self.tsa_url:
            from pyhanko.sign.timestamps import HTTPTimeStamper
            timestamper = HTTPTimeStamper(self.tsa_url, timeout=TSA_TIMEOUT_S)
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        _keep_xmp(writer)
        try:
            out = signers.sign_pdf(writer, meta, signer=self.simple_signer, timestamper=timestamper)
        except Exception as e:  # noqa: BLE001 -- pyHanko wraps network and TSA errors in several types
            if self.tsa_url:
                raise InputError(f"cannot timestamp the signature at {self.tsa_url}: {type(e).__name__}: {e}") \
                    from None
            raise InputError(f"cannot sign the report: {type(e).__name__}: {e}") from None
        return out.getvalue()


def _keep_xmp(writer) -> None:
    """Hand pyHanko the document's XMP metadata as its own metadata stream, so the signature's revision updates it
    (modification date, producer) instead of writing a fresh one without the PDF/A identification
    (pdfaid:part 3, conformance B) weasyprint wrote."""
    from pyhanko.pdf_utils.metadata import xmp_xml
    existing = writer.root.get("/Metadata")
    if existing is None:
        return
    stream = existing.get_object()
    if isinstance(stream, xmp_xml.MetadataStream):
        return
    kept = xmp_xml.MetadataStream.from_xmp(xmp_xml.parse_xmp(io.BytesIO(stream.data)))
    writer.root["/Metadata"] = writer.add_object(kept)
    writer.update_root()


def read_passphrase(key: str | Path) -> bytes:
    """The key's passphrase: IDIA_SIGN_PASSPHRASE, else asked for on the terminal without echo (never an
    argument, never written anywhere). No terminal and no variable is one InputError."""
    import getpass
    import os
    import sys
    if PASSPHRASE_ENV in os.environ:
        return os.environ[PASSPHRASE_ENV].encode("utf-8")
    if not sys.stdin.isatty():
        raise InputError(f"{key}: set {PASSPHRASE_ENV} to the key's passphrase (no terminal to ask on)")
    return getpass.getpass(f"Passphrase for {key}: ").encode("utf-8")


def load_signer(key: str | Path, passphrase: bytes | None, tsa_url: str | None = None) -> Signer:
    """The signer in a PKCS#12 file (key, certificate, chain). A wrong passphrase or a file that is not PKCS#12
    is one InputError naming the file."""
    from pyhanko.sign import signers
    data = read_regular_bytes(key, MAX_KEY_BYTES, what="PKCS#12 key file", missing="no such file")
    try:
        simple = signers.SimpleSigner.load_pkcs12_data(data, other_certs=(), passphrase=passphrase or None)
    except ValueError:
        raise InputError(f"{key}: cannot read the key and certificate (wrong passphrase, or not a PKCS#12 "
                         f"file; the passphrase is read from {PASSPHRASE_ENV} or asked for)") from None
    if tsa_url is not None and not tsa_url.lower().startswith(("http://", "https://")):
        raise InputError(f"--tsa must be an http:// or https:// URL of an RFC 3161 time-stamping authority, got "
                         f"{tsa_url!r}")
    cert = simple.signing_cert
    block = SignatureBlock(name=_name_part(cert.subject, "common_name") or cert.subject.human_friendly,
                           organisation=_name_part(cert.subject, "organization_name"),
                           certificate_sha256=hashlib.sha256(cert.dump()).hexdigest(),
                           issuer=cert.issuer.human_friendly, timestamped_by=tsa_url)
    return Signer(simple, block, tsa_url)


# --- validation ----------------------------------------------------------------------------------------------

@dataclass
class Findings:
    """What the signature check found: `notes` (said when all is well) and `problems` (each one line)."""

    notes: list[str]
    problems: list[str]
    signed: bool = False
    signers: list[str] | None = None  # each signature's signer, as its certificate names them (common name)


def load_trust_roots(paths) -> list:
    """The certificates in each PEM or DER file given with --trust."""
    from asn1crypto import pem, x509
    roots = []
    for path in paths:
        data = read_regular_bytes(path, MAX_KEY_BYTES, what="trust root", missing="no such file")
        try:
            blobs = [der for _, _, der in pem.unarmor(data, multiple=True)] if pem.detect(data) else [data]
            roots += [x509.Certificate.load(der) for der in blobs]
            for cert in roots:
                _ = cert.native  # parse now: a broken file is named here, not deep inside validation
        except ValueError:
            raise InputError(f"{path}: not a PEM or DER certificate") from None
    return roots


def signature_findings(pdf: bytes, trust_roots: list) -> Findings:
    """Every signature in `pdf` checked (see the module's docstring)."""
    from pyhanko.pdf_utils.misc import PdfReadError
    from pyhanko.pdf_utils.reader import PdfFileReader
    findings = Findings([], [])
    try:
        signatures = PdfFileReader(io.BytesIO(pdf), strict=False).embedded_signatures
    except (PdfReadError, ValueError, KeyError, IndexError) as e:
        findings.problems.append(f"the PDF's structure cannot be read ({type(e).__name__}: {e})")
        return findings
    if not signatures:
        findings.notes.append("not signed: nothing but its content vouches for this PDF (sign with "
                              "`idia report ... --sign KEY.p12`)")
        return findings
    findings.signed = True
    for sig in signatures:
        _check_one(sig, trust_roots, findings)
    return findings


def _check_one(sig, trust_roots: list, findings: Findings) -> None:
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext
    label = f"signature {sig.field_name!r}"
    # Explicit roots only (an empty list is no root at all, never the system's store); nothing fetched.
    context = ValidationContext(trust_roots=list(trust_roots), allow_fetching=False, revocation_mode="soft-fail")
    quiet = logging.getLogger("pyhanko")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # an untrusted path is our finding, not a logged traceback
    try:
        status = validate_pdf_signature(sig, signer_validation_context=context)
    except Exception as e:  # noqa: BLE001 -- a malformed signature dictionary, a CMS blob that does not parse
        findings.problems.append(f"{label} cannot be validated ({type(e).__name__}: {e})")
        return
    finally:
        quiet.setLevel(level)
    who = _name_part(sig.signer_cert.subject, "common_name") or sig.signer_cert.subject.human_friendly
    findings.signers = (findings.signers or []) + [who]
    org = _name_part(sig.signer_cert.subject, "organization_name")
    signer = f"{who} ({org})" if org else who
    if not status.intact:
        findings.problems.append(f"{label}: the signed bytes were changed after signing (signer {signer})")
    elif not status.valid:
        findings.problems.append(f"{label}: the signature does not verify with the signer's key ({signer})")
    if sig.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        findings.problems.append(f"{label} does not cover the whole file: bytes were added after signing")
    ts = status.timestamp_validity
    when = f"timestamped {ts.timestamp:%Y-%m-%d %H:%M:%S} UTC by an RFC 3161 authority" if ts is not None \
        else f"signing time {status.signer_reported_dt or 'not stated'} (the signer's clock; no timestamp)"
    if ts is not None and not (ts.intact and ts.valid):
        findings.problems.append(f"{label}: its timestamp token does not verify")
    if not trust_roots:
        trust = "trust not judged (give --trust CA.pem)"
    elif status.trusted and (ts is None or ts.trusted):
        trust = "trusted (a chain to a --trust root)"
    else:
        what = "the signer's certificate" if not status.trusted else "the timestamp's certificate"
        findings.problems.append(f"{label}: {what} does not chain to any --trust root ({signer})")
        trust = "untrusted"
    if status.intact and status.valid:
        whole = sig.coverage == SignatureCoverageLevel.ENTIRE_FILE
        findings.notes.append(f"{label} intact, covering {'the whole file' if whole else 'part of the file'}; "
                              f"signed by {signer}; {when}; {trust}")
