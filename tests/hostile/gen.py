#!/usr/bin/env python3
"""Writes the hostile-input corpus (tests/hostile/cases/*). Run from the repository root after
editing a case; the generated files are committed. Each case: input files, pipeline.toml and
case.toml (what the run must produce). tests/it/hostile.rs runs them all with the real binary."""
import json, os, shutil

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases")
CASES = {}

def toml_str(s):
    return json.dumps(s, ensure_ascii=False)

def toml_val(v):
    if isinstance(v, bool): return "true" if v else "false"
    if isinstance(v, (int, float)): return repr(v)
    if isinstance(v, str): return toml_str(v)
    if isinstance(v, list): return "[" + ", ".join(toml_val(x) for x in v) + "]"
    raise TypeError(v)

def pipeline(sources, org=None, extra=""):
    out = ['[pipeline]', 'name = "hostile"', 'output = "out"', '']
    org = org if org is not None else {"internal_domains": ["acme.com"]}
    out.append("[organization]")
    for k, v in org.items():
        out.append(f"{k} = {toml_val(v)}")
    out.append("")
    if extra:
        out.append(extra.strip()); out.append("")
    for s in sources:
        cols = s.pop("columns")
        out.append("[[source]]")
        for k, v in s.items():
            out.append(f"{k} = {toml_val(v)}")
        out.append("[source.columns]")
        for k, v in cols.items():
            out.append(f"{k} = {toml_val(v)}")
        out.append("")
    return "\n".join(out)

def src(fmt="csv", path=None, segment="external", columns=None, **kw):
    path = path or {"csv": "input.csv", "jsonl": "input.jsonl", "parquet": "input.parquet"}[fmt]
    d = {"name": kw.pop("name", "s"), "path": path, "format": fmt, "segment": segment}
    d.update(kw)
    d["columns"] = columns or {"id": "id", "text": "text", "timestamp": "ts"}
    return d

def case(name, about, files, sources=None, pipe=None, **expect):
    """files: name -> str|bytes. expect: keys of case.toml."""
    assert name not in CASES, name
    if pipe is None and sources is not None:
        pipe = pipeline(sources)
    CASES[name] = (about, files, pipe, expect)

def jl(*objs):
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs)

# ---------------------------------------------------------------- 1. CSV quoting
case("csv_unbalanced_quote", "issue case 1: a stray quote must not merge records 2 and 3",
     {"input.csv": 'id,text,ts\n1,first,2026-11-01\n2,"Best product ever,2026-11-01\n3,I said 5" screen,2026-11-02\n4,fourth,2026-11-03\n'},
     [src()], exit=1, signals=3, rejects={"unbalanced_quote": 1},
     reject_locations=["input.csv:3"], signal={"3": {"text": 'I said 5" screen'}})
case("csv_quote_never_closes", "a quote that never closes costs one line, not the rest of the file",
     {"input.csv": 'id,text,ts\n1,ok,2026-11-01\n2,"never closed,2026-11-01\n3,three,2026-11-02\n4,four,2026-11-02\n5,five,2026-11-03\n'},
     [src()], exit=1, signals=4, rejects={"unbalanced_quote": 1})
case("csv_quote_never_closes_first_record", "unbalanced quote on the first data line",
     {"input.csv": 'id,text,ts\n1,"oops,2026-11-01\n2,two,2026-11-02\n3,three,2026-11-02\n'},
     [src()], exit=1, signals=2, rejects={"unbalanced_quote": 1})
case("csv_stray_text_after_closing_quote", "a multi-line quoted field closing with text after the quote",
     {"input.csv": 'id,text,ts\n1,ok,2026-11-01\n2,"broken\nfield" tail,2026-11-01\n3,fine,2026-11-02\n'},
     [src()], exit=1, signals=2, rejects={"unbalanced_quote": 1, "malformed_row": 1})
case("csv_quoted_newlines_hold", "legitimate quoted newlines and commas stay one record",
     {"input.csv": 'id,text,ts\n1,"line one\nline two, with comma",2026-11-01\n2,"a\n\nb",2026-11-02\n'},
     [src()], exit=0, signals=2, signal={"1": {"text": "line one\nline two, with comma"}})
case("csv_escaped_quotes_hold", "doubled quotes inside a quoted field",
     {"input.csv": 'id,text,ts\n1,"she said ""hi""",2026-11-01\n'},
     [src()], exit=0, signals=1, signal={"1": {"text": 'she said "hi"'}})
case("csv_crlf_line_numbers", "CRLF file: the reject names the right physical line",
     {"input.csv": b'id,text,ts\r\n1,a,2026-11-01\r\n2,"multi\r\nline",2026-11-01\r\n3,bad,yesterday\r\n4,d,2026-11-01\r\n'},
     [src()], exit=1, signals=3, rejects={"bad_timestamp": 1}, reject_locations=["input.csv:5"])
case("csv_bom_holds", "UTF-8 BOM before the header",
     {"input.csv": b'\xef\xbb\xbfid,text,ts\n1,a,2026-11-01\n2,b,2026-11-01\n'},
     [src()], exit=0, signals=2)
case("csv_nul_bytes_hold", "NUL bytes inside a text",
     {"input.csv": b'id,text,ts\n1,nul\x00inside,2026-11-01\n2,b,2026-11-01\n'},
     [src()], exit=0, signals=2)
case("csv_invalid_utf8_mid_file_holds", "one invalid UTF-8 line in the middle",
     {"input.csv": b'id,text,ts\n1,a,2026-11-01\n2,\xff\xfe bad,2026-11-01\n3,c,2026-11-01\n'},
     [src()], exit=1, signals=2, rejects={"invalid_utf8": 1})
case("csv_empty_file", "issue case 7: an empty CSV says it is empty",
     {"input.csv": ""}, [src()], exit=2, stderr_contains=["empty"])
case("csv_header_only_holds", "header and no rows",
     {"input.csv": "id,text,ts\n"}, [src()], exit=0, signals=0)
case("csv_blank_lines_hold", "blank lines are not records",
     {"input.csv": "id,text,ts\n\n1,a,2026-11-01\n\n\n2,b,2026-11-01\n"}, [src()], exit=0, signals=2)
case("csv_5mb_text_holds", "a 5 MB text is one (truncated) signal",
     {"input.csv.tmpl": "id,text,ts\n1,{{REPEAT:bom produto :450000}},2026-11-01\n2,short,2026-11-01\n"},
     [src()], exit=0, signals=2, signal={"1": {"truncated": "true"}})
case("csv_too_many_fields_holds", "a row with extra fields",
     {"input.csv": "id,text,ts\n1,a,b,c,2026-11-01\n2,b,2026-11-01\n"}, [src()], exit=1, signals=1, rejects={"malformed_row": 1})
case("csv_missing_column_holds", "a configured column missing from the header is an error naming it",
     {"input.csv": "id,comment,ts\n1,a,2026-11-01\n"}, [src()], exit=2, stderr_contains=['text = "text"', "comment"])

# ---------------------------------------------------------------- 2. identities
ORG = {"internal_domains": ["acme.com"]}
auto_cols = {"id": "id", "text": "text", "timestamp": "ts", "author": "author"}
case("author_forms_route_internal", "issue case 2: common author spellings are recognised as acme.com and pseudonymised",
     {"input.jsonl": jl(
         {"id": "1", "text": "good", "ts": "2026-11-01", "author": "ana.silva@acme.com (Ana Silva)"},
         {"id": "2", "text": "good", "ts": "2026-11-01", "author": '"bruno.costa@acme.com"'},
         {"id": "3", "text": "good", "ts": "2026-11-01", "author": "carla.dias@acme.com;"},
         {"id": "4", "text": "good", "ts": "2026-11-01", "author": '["nina@acme.com"]'},
         {"id": "5", "text": "good", "ts": "2026-11-01", "author": ["otto@acme.com"]},
         {"id": "6", "text": "good", "ts": "2026-11-01", "author": "mailto:rita@acme.com."},
         {"id": "7", "text": "good", "ts": "2026-11-01", "author": "@somehandle"})},
     [src("jsonl", segment="auto", columns=auto_cols)], exit=0, signals=7,
     signal={**{str(i): {"segment": "internal"} for i in range(1, 7)}, "7": {"segment": "external", "author_id": "@somehandle"}},
     output_lacks=["ana.silva", "bruno.costa", "carla.dias", "nina@", "otto@", "rita@"])
case("author_angle_brackets_hold", "display name with angle brackets",
     {"input.jsonl": jl({"id": "1", "text": "good", "ts": "2026-11-01", "author": "Ana Silva <ana@acme.com>"})},
     [src("jsonl", segment="auto", columns=auto_cols)], exit=0, signals=1, signal={"1": {"segment": "internal"}},
     output_lacks=["ana@acme.com"])
case("reject_raw_json_escapes_redacted", "issue case 2: addresses written with JSON escapes are redacted in rejects' raw",
     {"input.jsonl":
        '{"id": "1", "text": "", "ts": "2026-11-01", "author": "pedro\\u002Ebarros\\u0040acme.com"}\n'
        '{"id": "2", "text": "", "ts": "2026-11-01", "author": "jo\\u00e3o.lima@acme.com"}\n'
        '{"id": "3", "text": "x", "ts": "2026-11-01", "author": "pedro\\u002Ebarros\\u0040acme.com", "broken"\n'},
     [src("jsonl", segment="auto", columns=auto_cols)], exit=1, signals=0,
     rejects={"empty_text": 2, "malformed_row": 1}, output_lacks=["barros", "jo\\u00e3o", "joão", "u0040acme"])
case("reject_raw_apostrophe_redacted", "an apostrophe in the local part does not leave the address half in clear",
     {"input.csv": "id,text,ts,author\n1,,2026-11-01,maria.o'brien@acme.com\n2,   ,2026-11-01,'ana@acme.com'\n"},
     [src(segment="internal", columns=auto_cols)], exit=1, signals=0, rejects={"empty_text": 2},
     output_lacks=["maria", "brien", "ana@"])

# ---------------------------------------------------------------- 3. numbers and times
likes_cols = {"id": "id", "text": "text", "timestamp": "ts", "likes": "likes"}
case("likes_1e30", "issue case 3: 1e30 likes is not i64::MAX",
     {"input.jsonl": '{"id":"1","text":"a","ts":"2026-11-01","likes":1e30}\n{"id":"2","text":"b","ts":"2026-11-01","likes":3}\n'},
     [src("jsonl", columns=likes_cols)], exit=1, signals=1, rejects={"bad_number:likes": 1}, signal={"2": {"likes": 3}})
case("likes_u64_max", "2^64-1 likes",
     {"input.jsonl": '{"id":"1","text":"a","ts":"2026-11-01","likes":18446744073709551615}\n'},
     [src("jsonl", columns=likes_cols)], exit=1, signals=0, rejects={"bad_number:likes": 1})
case("likes_negative", "negative counts are rejected",
     {"input.csv": "id,text,ts,likes\n1,a,2026-11-01,-5\n2,b,2026-11-01,4\n"},
     [src(columns=likes_cols)], exit=1, signals=1, rejects={"bad_number:likes": 1})
case("likes_huge_string", "a 20-digit count in a CSV",
     {"input.csv": "id,text,ts,likes\n1,a,2026-11-01,99999999999999999999\n2,b,2026-11-01,1e30\n"},
     [src(columns=likes_cols)], exit=1, signals=0, rejects={"bad_number:likes": 2})
case("likes_plain_values_hold", "ordinary counts in every spelling",
     {"input.jsonl": '{"id":"1","text":"a","ts":"2026-11-01","likes":0}\n{"id":"2","text":"b","ts":"2026-11-01","likes":"12"}\n{"id":"3","text":"c","ts":"2026-11-01","likes":7.0}\n'},
     [src("jsonl", columns=likes_cols)], exit=0, signals=3, signal={"1": {"likes": 0}, "2": {"likes": 12}, "3": {"likes": 7}})
case("epoch_float_milliseconds", "issue case 3: a float epoch in ms is read by magnitude, like the same number as text",
     {"input.jsonl": '{"id":"1","text":"a","ts":1762000000123.0}\n{"id":"2","text":"b","ts":"1762000000123"}\n{"id":"3","text":"c","ts":1762000000}\n'},
     [src("jsonl")], exit=0, signals=3,
     signal={"1": {"event_time": "2025-11-01T12:26:40.123Z"}, "2": {"event_time": "2025-11-01T12:26:40.123Z"}, "3": {"event_time": "2025-11-01T12:26:40Z"}})
case("epoch_1e300", "a timestamp of 1e300 is bad_timestamp, not the edge of the range",
     {"input.jsonl": '{"id":"1","text":"a","ts":1e300}\n{"id":"2","text":"b","ts":"1e300"}\n{"id":"3","text":"c","ts":-1e300}\n'},
     [src("jsonl")], exit=1, signals=0, rejects={"bad_timestamp": 3})
case("timestamp_window", "times before 1990 or after the run date + 1 day are bad_timestamp",
     {"input.csv": "id,text,ts\n1,a,1900-01-01\n2,b,2030-01-01\n3,c,2026-11-16 23:00:00\n4,d,1989-12-31T23:59:59Z\n5,e,1990-01-01\n6,f,0\n"},
     [src()], exit=1, signals=2, rejects={"bad_timestamp": 4})
case("limits_are_configurable", "[limits] widens the window and caps counts",
     {"input.csv": "id,text,ts,likes\n1,a,1950-06-01,5\n2,b,2026-11-01,500\n"},
     pipe=pipeline([src(columns=likes_cols)], extra='[limits]\nearliest_timestamp = "1900-01-01"\nmax_count = 100'),
     exit=1, signals=1, rejects={"bad_number:likes": 1}, signal={"1": {"event_time": "1950-06-01T00:00:00Z"}})
case("date_flag_year_10000", "issue case 3: --date +10000-01-01 is refused",
     {"input.csv": "id,text,ts\n1,a,2026-11-01\n"}, [src()], args=["--date", "+10000-01-01"], exit=2,
     stderr_contains=["YYYY-MM-DD"])
case("date_flag_1980", "--date before 1990 is refused",
     {"input.csv": "id,text,ts\n1,a,2026-11-01\n"}, [src()], args=["--date", "1980-01-01"], exit=2, stderr_contains=["1990"])
case("date_flag_feb30_holds", "--date 2026-02-30 is refused",
     {"input.csv": "id,text,ts\n1,a,2026-11-01\n"}, [src()], args=["--date", "2026-02-30"], exit=2)

# ---------------------------------------------------------------- 4. types
case("parquet_binary_text", "issue case 4: a binary text column is decoded as UTF-8, not hex",
     {}, [src("parquet")], parquet="binary_text", exit=1, signals=2, rejects={"invalid_utf8": 1},
     signal={"1": {"text": "abc"}, "2": {"text": "ótimo"}})
case("parquet_nan_timestamp", "issue case 4: a NaN timestamp is bad_timestamp, not missing_field",
     {}, [src("parquet")], parquet="nan_timestamp", exit=1, signals=1, rejects={"bad_timestamp": 1, "missing_field:timestamp": 1})
case("parquet_zero_rows_holds", "a Parquet file with a schema and no rows",
     {}, [src("parquet")], parquet="zero_rows", exit=0, signals=0)
case("parquet_corrupt_holds", "a corrupt Parquet file stops the run with a clear error",
     {"input.parquet": b"PAR1 this is not parquet at all PAR1"}, [src("parquet")], exit=2, stderr_contains=["Parquet"])
case("parquet_wrong_struct_path", "issue case 5: a wrong path under a Parquet struct is named, with the fields the file has",
     {}, [src("parquet", segment="external", columns={"id": "id", "text": "text", "timestamp": "ts", "author": "user.handel"})],
     parquet="struct_user", exit=2, stderr_contains=['author = "user.handel"', "user.handle"])
case("parquet_struct_path_holds", "a correct path under a Parquet struct",
     {}, [src("parquet", segment="external", columns={"id": "id", "text": "text", "timestamp": "ts", "author": "user.handle"})],
     parquet="struct_user", exit=0, signals=2, signal={"1": {"author_id": "@maria"}})
case("jsonl_non_scalar_fields", "issue case 4: arrays and objects where a value is expected are rejected",
     {"input.jsonl": jl(
         {"id": "1", "text": ["not", "a", "string"], "ts": "2026-11-01"},
         {"id": "2", "text": {"body": "x"}, "ts": "2026-11-01"},
         {"id": "3", "text": "ok", "ts": "2026-11-01", "dept": {"name": "IT"}},
         {"id": {"n": 4}, "text": "ok", "ts": "2026-11-01"},
         {"id": "5", "text": "ok", "ts": ["2026-11-01"]},
         {"id": "6", "text": "ok", "ts": "2026-11-01", "dept": "IT"})},
     [src("jsonl", segment="internal", columns={"id": "id", "text": "text", "timestamp": "ts", "department": "dept"})],
     exit=1, signals=1, rejects={"not_scalar:text": 2, "not_scalar:department": 1, "not_scalar:id": 1, "not_scalar:timestamp": 1})
case("jsonl_bom", "issue case 4: a UTF-8 BOM on a JSON Lines file",
     {"input.jsonl": b'\xef\xbb\xbf{"id":"1","text":"a","ts":"2026-11-01"}\n{"id":"2","text":"b","ts":"2026-11-01"}\n'},
     [src("jsonl")], exit=0, signals=2)
case("jsonl_truncated_holds", "a truncated last line",
     {"input.jsonl": '{"id":"1","text":"a","ts":"2026-11-01"}\n{"id":"2","text":"b'},
     [src("jsonl")], exit=1, signals=1, rejects={"malformed_row": 1})
case("jsonl_not_object_holds", "JSON that is not an object",
     {"input.jsonl": '[1,2]\n"text"\n{"id":"1","text":"a","ts":"2026-11-01"}\n'},
     [src("jsonl")], exit=1, signals=1, rejects={"malformed_row": 2})
case("jsonl_crlf_invalid_utf8_holds", "CRLF JSON Lines with an invalid UTF-8 line",
     {"input.jsonl": b'{"id":"1","text":"a","ts":"2026-11-01"}\r\n{"id":"2","text":"\xff","ts":"2026-11-01"}\r\n'},
     [src("jsonl")], exit=1, signals=1, rejects={"invalid_utf8": 1}, reject_locations=["input.jsonl:2"])

case("parquet_u64_likes", "a UInt64 count of 2^64-1 in Parquet",
     {}, [src("parquet", columns=likes_cols)], parquet="u64_likes", exit=1, signals=1, rejects={"bad_number:likes": 1},
     signal={"1": {"likes": 3}})
case("parquet_zoned_and_naive_timestamps", "a zoned Parquet timestamp keeps its instant; a naive one is read in the source's timezone",
     {}, pipe=pipeline([src("parquet", name="naive", timezone="America/Sao_Paulo", columns={"id": "id", "text": "text", "timestamp": "local_ts"}),
                        src("parquet", name="zoned", timezone="Europe/Madrid", columns={"id": "id", "text": "text", "timestamp": "zoned_ts"})]),
     parquet="zoned_naive_ts", exit=0, signals=2, signal={"1": {"event_time": "2026-11-03T17:22:00Z"}})
case("jsonl_counts_of_other_types", "booleans and arrays as counts",
     {"input.jsonl": '{"id":"1","text":"a","ts":"2026-11-01","likes":true}\n{"id":"2","text":"b","ts":"2026-11-01","likes":[1]}\n{"id":"3","text":"c","ts":"2026-11-01","likes":"lots"}\n'},
     [src("jsonl", columns=likes_cols)], exit=1, signals=0, rejects={"bad_number:likes": 2, "not_scalar:likes": 1})
case("jsonl_author_object", "an object as author is not_scalar, not published as JSON text",
     {"input.jsonl": '{"id":"1","text":"a","ts":"2026-11-01","author":{"email":"ana@acme.com"}}\n'},
     [src("jsonl", segment="auto", columns=auto_cols)], exit=1, signals=0, rejects={"not_scalar:author": 1}, output_lacks=["ana@acme.com"])
case("csv_quote_spans_many_lines", "a quoted field running over 100 lines is an unbalanced quote; each line after it is accounted for",
     {"input.csv": 'id,text,ts\n1,"start\n' + "word\n" * 120 + 'end",2026-11-01\n2,ok,2026-11-01\n'},
     [src()], exit=1, signals=1, rejects={"unbalanced_quote": 1, "malformed_row": 121})
case("csv_tab_sniffed", "a tab-separated export without delimiter set",
     {"input.csv": "id\ttext\tts\n1\tbom, muito\t2026-11-01\n"}, [src()], exit=0, signals=1, signal={"1": {"text": "bom, muito"}})
case("csv_whitespace_line_holds", "a line of spaces is a malformed row, not lost",
     {"input.csv": "id,text,ts\n   \n1,a,2026-11-01\n"}, [src()], exit=1, signals=1, rejects={"malformed_row": 1})
case("privacy_drop_auto_source", "drop applies to records an auto source routes internal, not to its external ones",
     {"input.csv": "id,text,ts,author\n1,internal secretword,2026-11-01,ana@acme.com\n2,public praise,2026-11-01,bob@gmail.com\n"},
     pipe=pipeline([src(segment="auto", columns=auto_cols)], extra='[privacy]\ninternal_text = "drop"'), exit=0, signals=2,
     output_lacks=["secretword"], signal={"1": {"text": "", "segment": "internal"}, "2": {"text": "public praise", "segment": "external"}})

# ---------------------------------------------------------------- 5. mistakes that pass validate
helpdesk = jl({"ticket_id": "t1", "created": "2026-11-05 09:12:00", "requester": {"email": "rui@acme.com"}, "body": "slow laptop", "metrics": {"likes": 1}},
              {"ticket_id": "t2", "created": "2026-11-05 10:00:00", "requester": {"email": "ana@acme.com"}, "body": "thanks", "metrics": {"likes": 2}})
hd_cols = {"id": "ticket_id", "text": "body", "timestamp": "created", "author": "requester.mail"}
case("validate_wrong_dotted_path", "issue case 5: validate names a mapped field that matches nothing, with the keys the file has",
     {"input.jsonl": helpdesk}, [src("jsonl", segment="auto", columns=hd_cols)], command="validate", exit=1,
     stdout_contains=['author = "requester.mail"', "requester.email"])
case("validate_optional_field_matches_nothing", "an optional field that matches nothing",
     {"input.jsonl": helpdesk}, [src("jsonl", segment="auto", columns={"id": "ticket_id", "text": "body", "timestamp": "created", "author": "requester.email", "likes": "metrics.like"})],
     command="validate", exit=1, stdout_contains=['likes = "metrics.like"', "metrics.likes"])
case("run_warns_on_wrong_dotted_path", "run says which mapped field matched nothing",
     {"input.jsonl": helpdesk}, [src("jsonl", segment="auto", columns=hd_cols)], exit=0, signals=2,
     stderr_contains=['author = "requester.mail"'])
case("validate_clean_holds", "a correct pipeline validates with exit 0",
     {"input.jsonl": helpdesk}, [src("jsonl", segment="auto", columns={"id": "ticket_id", "text": "body", "timestamp": "created", "author": "requester.email"})],
     command="validate", exit=0, stdout_contains=["configuration OK"])
case("score_json_line_without_text", "issue case 5: pulso score refuses a JSON line without text, naming the line",
     {"input.jsonl": '{"text": "great"}\n{"body": "no text field"}\n'}, None, pipe="", command="score", exit=2,
     stderr_contains=["line 2", "text"])
case("score_json_text_not_a_string", "pulso score refuses a JSON line whose text is not a string",
     {"input.jsonl": '{"text": 5}\n'}, None, pipe="", command="score", exit=2, stderr_contains=["line 1"])
case("score_plain_text_holds", "pulso score on plain text lines",
     {"input.jsonl": "great\nterrible\n"}, None, pipe="", command="score", exit=0, stdout_lines=2)

# ---------------------------------------------------------------- 6. exports as users have them
case("csv_semicolon_sniffed", "issue case 6: a ;-separated export without delimiter set",
     {"input.csv": "id;text;ts\n1;bom, muito bom;2026-11-01\n2;ruim;2026-11-02\n"}, [src()], exit=0, signals=2,
     signal={"1": {"text": "bom, muito bom"}})
case("csv_semicolon_hint", "a ;-separated header that still misses a column says delimiter = \";\" exists",
     {"input.csv": "id;comentario;ts\n1;bom;2026-11-01\n"}, [src()], exit=2, stderr_contains=['delimiter = ";"'])
case("csv_latin1", "issue case 6: encoding = \"latin-1\"",
     {"input.csv": "id;text;ts\n1;Não gostei do atendimento;2026-11-01\n".encode("latin-1")},
     [src(delimiter=";", encoding="latin-1")], exit=0, signals=1, signal={"1": {"text": "Não gostei do atendimento"}})
case("csv_windows1252", "encoding = \"windows-1252\" (euro sign, curly quotes)",
     {"input.csv": "id,text,ts\n1,Custa 5 € “caro”,2026-11-01\n".encode("cp1252")},
     [src(encoding="windows-1252")], exit=0, signals=1, signal={"1": {"text": "Custa 5 € “caro”"}})
case("jsonl_latin1", "encoding applies to JSON Lines too",
     {"input.jsonl": '{"id":"1","text":"Ação rápida","ts":"2026-11-01"}\n'.encode("latin-1")},
     [src("jsonl", encoding="latin-1")], exit=0, signals=1, signal={"1": {"text": "Ação rápida"}})
case("csv_latin1_undeclared_holds", "Latin-1 bytes without encoding are invalid_utf8, not mojibake",
     {"input.csv": "id,text,ts\n1,Não,2026-11-01\n2,ok,2026-11-01\n".encode("latin-1")},
     [src()], exit=1, signals=1, rejects={"invalid_utf8": 1})
case("unknown_encoding", "an unsupported encoding is a config error",
     {"input.csv": "id,text,ts\n"}, [src(encoding="ebcdic")], exit=2, stderr_contains=["latin-1"])
case("timezone_sao_paulo", "issue case 6: naive times in the source's IANA zone",
     {"input.csv": "id,text,ts\n1,a,2026-11-03 14:22:00\n2,b,2026-11-03T14:22:00Z\n3,c,2026-11-03\n"},
     [src(timezone="America/Sao_Paulo")], exit=0, signals=3,
     signal={"1": {"event_time": "2026-11-03T17:22:00Z"}, "2": {"event_time": "2026-11-03T14:22:00Z"}, "3": {"event_time": "2026-11-03T03:00:00Z"}})
case("timezone_invalid", "a timezone that is not an IANA name",
     {"input.csv": "id,text,ts\n"}, [src(timezone="Brasilia")], exit=2, stderr_contains=["IANA"])
case("rfc2822_dates", "issue case 6: RFC 2822 dates from e-mail exports",
     {"input.csv": 'id,text,ts\n1,a,"Tue, 03 Nov 2026 14:22:00 -0300"\n2,b,"Tue, 3 Nov 2026 17:22:00 GMT"\n'},
     [src()], exit=0, signals=2, signal={"1": {"event_time": "2026-11-03T17:22:00Z"}, "2": {"event_time": "2026-11-03T17:22:00Z"}})
case("enps_and_rating_bounds", "issue case 6: eNPS outside 0-10 and ratings outside 1-5 are bad_number",
     {"input.csv": "id,text,ts,enps,stars\n1,a,2026-11-01,11,\n2,b,2026-11-01,-1,\n3,c,2026-11-01,10,5\n4,d,2026-11-01,0,1\n5,e,2026-11-01,,0\n6,f,2026-11-01,,6\n7,g,2026-11-01,,\"4,5\"\n"},
     [src(columns={"id": "id", "text": "text", "timestamp": "ts", "score": "enps", "rating": "stars"})], exit=1, signals=3,
     rejects={"bad_number:score": 2, "bad_number:rating": 2}, signal={"7": {"rating": "4.5"}, "3": {"score": "10.0"}})

# timestamp spellings: every accepted spelling is 2026-11-03T17:22:00Z
OK_TS = ["2026-11-03T17:22:00Z", "2026-11-03T17:22:00z", "2026-11-03T17:22:00+00:00", "2026-11-03T14:22:00-03:00",
         "2026-11-03T18:22:00+01:00", "2026-11-03T17:22:00.000Z", "2026-11-03T17:22:00.000000Z", "2026-11-03 17:22:00Z",
         "2026-11-03 14:22:00-03:00", "2026-11-03 14:22:00-0300", "2026-11-03T14:22:00-0300", "2026-11-03 17:22:00",
         "2026-11-03T17:22:00", "2026-11-03 17:22", "2026-11-03T17:22", "2026-11-03 17:22:00.0", "2026/11/03 17:22:00",
         "2026/11/03 17:22", "20261103T172200", "2026-11-03 17:22:00 UTC", "2026-11-03 17:22:00 GMT",
         "Tue, 03 Nov 2026 17:22:00 +0000", "Tue, 3 Nov 2026 14:22:00 -0300", "3 Nov 2026 17:22:00 GMT",
         "Tue, 03 Nov 2026 17:22:00 GMT", "1793726520", "1793726520000", "1793726520000000", "1793726520000000000",
         "1793726520.0", " 2026-11-03T17:22:00Z ", "2026-11-03T17:22Z", "1793726520e9"]
BAD_TS = ["yesterday", "2026-13-45", "12/31/2026 10:00", "03/11/2026", "2026-11-03T25:00:00Z", "NaN", "inf", "-",
          "2026-02-30", "1e300", "0x6907", "Tue, 33 Nov 2026 17:22:00 GMT", "2026-11-03T17:22:00+25:00"]
lines = [{"id": f"ok{i}", "text": "x", "ts": t} for i, t in enumerate(OK_TS)] + \
        [{"id": f"bad{i}", "text": "x", "ts": t} for i, t in enumerate(BAD_TS)] + \
        [{"id": "num", "text": "x", "ts": 1793726520}, {"id": "numms", "text": "x", "ts": 1793726520000},
         {"id": "numf", "text": "x", "ts": 1793726520.0}, {"id": "bool", "text": "x", "ts": True}]
case("timestamp_spellings", f"{len(OK_TS) + len(BAD_TS) + 4} timestamp spellings: each parses to the same instant or is bad_timestamp",
     {"input.jsonl": jl(*lines)}, [src("jsonl")], exit=1, signals=len(OK_TS) + 3, rejects={"bad_timestamp": len(BAD_TS) + 1},
     signal={**{f"ok{i}": {"event_time": "2026-11-03T17:22:00Z"} for i in range(len(OK_TS))},
             "num": {"event_time": "2026-11-03T17:22:00Z"}, "numms": {"event_time": "2026-11-03T17:22:00Z"}, "numf": {"event_time": "2026-11-03T17:22:00Z"}})

# ---------------------------------------------------------------- 7. small things
case("error_not_repeated", "issue case 7: an error names its cause once",
     {}, None, pipe=None, command="run-missing", exit=2, stderr_once=["No such file or directory"])
case("error_not_repeated_download", "issue case 7: a failed model download names its URL once (not 'URL: URL: ...')",
     {"input.txt": "great\n"}, None, pipe="", command="score-hub", exit=2,
     stderr_once=["http://127.0.0.1:9/owner/model/resolve/main/config.json"], stderr_contains=["air-gapped"])
case("score_no_progress", "issue case 7: pulso score takes --no-progress",
     {"input.txt": "great\n"}, None, pipe="", command="score", args=["--no-progress"], exit=0, stdout_lines=1)
case("validate_no_progress", "pulso validate takes --no-progress",
     {"input.csv": "id,text,ts\n1,a,2026-11-01\n"}, [src()], command="validate", args=["--no-progress"], exit=0)

# ---------------------------------------------------------------- privacy
mixed = [src(name="survey", path="survey.csv", segment="internal", columns={"id": "id", "text": "text", "timestamp": "ts", "author": "author"}),
         src(name="mentions", path="mentions.csv", segment="external")]
mixed_files = {"survey.csv": "id,text,ts,author\ns1,my manager secretword is unfair,2026-11-01,ana@acme.com\ns2,secretword again,2026-11-01,rui@acme.com\ns3,,2026-11-01,eva@acme.com\n",
               "mentions.csv": "id,text,ts\nm1,love it,2026-11-01\nm2,hate it,2026-11-01\n"}
case("privacy_keep_says_so", "the default keeps row-level internal text and says so once, pointing to [privacy]",
     dict(mixed_files), [dict(s, columns=dict(s["columns"])) for s in mixed], exit=1, signals=4, rejects={"empty_text": 1},
     stdout_once=["internal_text"], signal={"s1": {"text": "my manager secretword is unfair"}})
case("privacy_drop", "[privacy] internal_text = \"drop\": internal signals keep scores, not text; internal rejects lose raw",
     dict(mixed_files), pipe=pipeline([dict(s, columns=dict(s["columns"])) for s in mixed], extra='[privacy]\ninternal_text = "drop"'),
     exit=1, signals=4, rejects={"empty_text": 1}, output_lacks=["secretword", "eva@"], stdout_lacks=["internal_text"],
     signal={"s1": {"text": "", "segment": "internal"}, "m1": {"text": "love it"}})
case("privacy_aggregates_only", "[privacy] internal_text = \"aggregates-only\": no internal rows at all",
     dict(mixed_files), pipe=pipeline([dict(s, columns=dict(s["columns"])) for s in mixed], extra='[privacy]\ninternal_text = "aggregates-only"'),
     exit=1, signals=2, rejects={"empty_text": 1}, output_lacks=["secretword", "eva@"], stdout_contains=["4 signals"])
case("privacy_invalid_value", "an unknown internal_text value is a config error",
     dict(mixed_files), pipe=pipeline([dict(s, columns=dict(s["columns"])) for s in mixed], extra='[privacy]\ninternal_text = "hide"'),
     exit=2, stderr_contains=["aggregates-only"])


def main():
    if os.path.isdir(ROOT):
        shutil.rmtree(ROOT)
    for name, (about, files, pipe, expect) in CASES.items():
        d = os.path.join(ROOT, name)
        os.makedirs(d)
        for fn, body in files.items():
            with open(os.path.join(d, fn), "wb") as f:
                f.write(body if isinstance(body, bytes) else body.encode("utf-8"))
        if pipe:
            with open(os.path.join(d, "pipeline.toml"), "w") as f:
                f.write(pipe)
        lines = [f"about = {toml_str(about)}"]
        sig = expect.pop("signal", None)
        rej = expect.pop("rejects", None)
        for k, v in expect.items():
            lines.append(f"{k} = {toml_val(v)}")
        if rej is not None:
            lines.append("[rejects]")
            for k, v in rej.items():
                lines.append(f"{toml_str(k)} = {v}")
        if sig:
            for rid, cols in sig.items():
                lines.append(f"[signal.{toml_str(rid)}]")
                for k, v in cols.items():
                    lines.append(f"{k} = {toml_val(v)}")
        with open(os.path.join(d, "case.toml"), "w") as f:
            f.write("\n".join(lines) + "\n")
    print(f"{len(CASES)} cases in {ROOT}")

main()
