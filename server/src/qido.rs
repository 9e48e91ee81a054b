//! QIDO-RS search for [`crate::dicomweb`]: result rows of studies, series and instances from the instances'
//! headers, and the filters (PS3.18 8.3.4: a UID list, a date range, `*`/`?` wildcards, `fuzzymatching` on
//! person names), `offset` and `limit`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::dicomweb::{first_str, Instance};
use crate::routes::Q;
use crate::{ApiError, ApiResult};

/// The longest filter value accepted (a DICOM value is at most 64 characters but for texts; a UID list can be
/// long).
const FILTER_MAX: usize = 4096;

/// The DICOM JSON key of a QIDO attribute: a keyword of the standard dictionary or eight hex digits.
fn tag_of(k: &str) -> Option<String> {
    use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
    if k.len() == 8 && k.chars().all(|c| c.is_ascii_hexdigit()) {
        return Some(k.to_ascii_uppercase());
    }
    let t = dicom_dictionary_std::StandardDataDictionary.by_name(k)?.tag();
    Some(format!("{:04X}{:04X}", t.group(), t.element()))
}

/// A `*`/`?` wildcard match in O(|pattern| · |value|) (two pointers, back to the last `*`); case-insensitive for
/// person names only.
fn wildcard(pat: &[char], s: &[char], fold: bool) -> bool {
    let eq = |a: char, b: char| a == b || (fold && a.to_lowercase().eq(b.to_lowercase()));
    let (mut p, mut i, mut star, mut mark) = (0, 0, None, 0);
    while i < s.len() {
        if p < pat.len() && (pat[p] == '?' || (pat[p] != '*' && eq(pat[p], s[i]))) {
            p += 1;
            i += 1;
        } else if p < pat.len() && pat[p] == '*' {
            star = Some(p);
            mark = i;
            p += 1;
        } else if let Some(sp) = star {
            p = sp + 1;
            mark += 1;
            i = mark;
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&c| c == '*')
}

/// Dates and times padded for range comparison: the lower end with zeros, the upper with nines.
fn pad(v: &str, vr: &str, fill: char) -> String {
    let width = match vr {
        "TM" => 13,
        "DT" => 21,
        _ => 8,
    };
    let mut s: String = v.chars().filter(|c| *c != ':').collect();
    while s.len() < width {
        s.push(fill);
    }
    s
}

/// Whether an attribute's values match a QIDO filter: a UID list (or a list of codes), a date or time range
/// `a-b`, or a wildcard pattern (a trailing `*` implied with `fuzzymatching=true` on person names).
fn matches(values: &[String], filter: &str, vr: &str, fuzzy: bool) -> bool {
    if filter.is_empty() || filter == "*" {
        return true;
    }
    match vr {
        "UI" => filter.split([',', '\\']).any(|u| values.iter().any(|v| v == u.trim())),
        "CS" if filter.contains([',', '\\']) => filter.split([',', '\\']).any(|f| matches(values, f.trim(), vr, fuzzy)),
        "DA" | "TM" | "DT" if filter.contains('-') => {
            let (a, b) = filter.split_once('-').unwrap_or((filter, filter));
            let (a, b) = (pad(a, vr, '0'), pad(b, vr, '9'));
            values.iter().any(|v| {
                let v = pad(v, vr, '0');
                (a.trim_matches('0').is_empty() || v >= a) && (b.trim_matches('9').is_empty() || v <= b)
            })
        }
        _ => {
            let mut f = filter.to_string();
            if fuzzy && vr == "PN" && !f.ends_with('*') {
                f.push('*');
            }
            let pat: Vec<char> = f.chars().collect();
            values.iter().any(|v| wildcard(&pat, &v.chars().collect::<Vec<_>>(), vr == "PN"))
        }
    }
}

/// Every string form of an element's values (PN groups by their alphabetic form).
fn strings_of(e: Option<&Value>) -> (Vec<String>, String) {
    let Some(e) = e else { return (Vec::new(), String::new()) };
    let vr = e.get("vr").and_then(|v| v.as_str()).unwrap_or("").to_string();
    let vals = e.get("Value").and_then(|v| v.as_array()).cloned().unwrap_or_default();
    let s = vals
        .iter()
        .filter_map(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Object(o) => o.get("Alphabetic").and_then(|a| a.as_str()).map(str::to_string),
            _ => None,
        })
        .collect();
    (s, vr)
}

/// A result row and the entity it is matched on: the row's own computed attributes over its entity's header (the
/// first instance's).
pub(crate) struct Row {
    out: Map<String, Value>,
    inst: Arc<Instance>,
    /// The entity's whole header, parsed the first time a filter names an attribute outside [`ROW_TAGS`].
    full: std::cell::OnceCell<Map<String, Value>>,
}

impl Row {
    fn new(inst: &Arc<Instance>, out: Map<String, Value>) -> Row {
        Row { out, inst: inst.clone(), full: std::cell::OnceCell::new() }
    }

    /// An attribute of the row: its own, else its entity's (a row attribute the header lacks is absent without
    /// parsing the header).
    fn get(&self, tag: &str) -> Option<&Value> {
        if let Some(v) = self.out.get(tag).or_else(|| self.inst.attrs.get(tag)) {
            return Some(v);
        }
        if ROW_TAGS.contains(&tag) {
            return None;
        }
        self.full.get_or_init(|| self.inst.header()).get(tag)
    }
}

/// A QIDO query applied to result rows: its filters (matched on each row's entity; a matched attribute and each
/// `includefield` one is copied into the row), `offset` and `limit`. Also the query keys that are not attributes,
/// ignored as PS3.18 asks (the caller says so in a `Warning` header).
pub(crate) fn filtered(rows: Vec<Row>, q: &Q) -> ApiResult<(Vec<Value>, Vec<String>)> {
    let fuzzy = q.get("fuzzymatching").is_some_and(|v| v == "true");
    let (mut filters, mut ignored, mut include) = (Vec::new(), Vec::new(), Vec::new());
    for (k, v) in q.iter() {
        match k.as_str() {
            "limit" | "offset" | "fuzzymatching" => continue,
            "includefield" => {
                include.extend(v.split(',').filter_map(|f| tag_of(f.trim())));
                continue;
            }
            _ => {}
        }
        if v.len() > FILTER_MAX {
            return Err(ApiError::bad(format!("QIDO filter {k}: {} characters (at most {FILTER_MAX})", v.len())));
        }
        match tag_of(k) {
            Some(tag) => filters.push((tag, v.clone())),
            None => ignored.push(k.clone()),
        }
    }
    let num = |name: &str, default: usize| -> ApiResult<usize> {
        q.get(name).map_or(Ok(default), |v| v.parse().map_err(|_| ApiError::bad(format!("{name} {v:?}: a number"))))
    };
    let (offset, limit) = (num("offset", 0)?, num("limit", usize::MAX)?);
    let rows = rows
        .into_iter()
        .filter(|r| {
            filters.iter().all(|(tag, f)| {
                let (vals, vr) = strings_of(r.get(tag));
                matches(&vals, f, &vr, fuzzy)
            })
        })
        .skip(offset)
        .take(limit)
        .map(|mut r| {
            for tag in filters.iter().map(|(t, _)| t).chain(&include) {
                if !r.out.contains_key(tag) {
                    if let Some(v) = r.get(tag).cloned() {
                        r.out.insert(tag.clone(), v);
                    }
                }
            }
            Value::Object(r.out)
        })
        .collect();
    Ok((rows, ignored))
}

/// Copy the elements `tags` of an instance's header into a result row.
fn pick(src: &Map<String, Value>, tags: &[&str]) -> Map<String, Value> {
    tags.iter().filter_map(|t| src.get(*t).map(|v| (t.to_string(), v.clone()))).collect()
}

fn is(n: usize) -> Value {
    json!({"vr": "IS", "Value": [n]})
}

fn url(u: String) -> Value {
    json!({"vr": "UR", "Value": [u]})
}

const STUDY_TAGS: &[&str] = &[
    "00080020", "00080030", "00080050", "00080090", "00081030", "00100010", "00100020", "00100030", "00100040",
    "0020000D", "00200010",
];
const SERIES_TAGS: &[&str] = &["00080021", "00080031", "00080060", "0008103E", "0020000D", "0020000E", "00200011"];
const INSTANCE_TAGS: &[&str] =
    &["00080016", "00080018", "0020000D", "0020000E", "00200013", "00280008", "00280010", "00280011"];
/// Every attribute a study, series or instance row takes from a header: the index keeps these parsed.
pub(crate) const ROW_TAGS: &[&str] = &[
    "00080020", "00080030", "00080050", "00080090", "00081030", "00100010", "00100020", "00100030", "00100040",
    "0020000D", "00200010", "00080021", "00080031", "00080060", "0008103E", "0020000E", "00200011", "00080016",
    "00080018", "00200013", "00280008", "00280010", "00280011",
];

pub(crate) fn study_rows(all: &[Arc<Instance>], base: &str) -> Vec<Row> {
    let mut by: BTreeMap<&str, Vec<&Arc<Instance>>> = BTreeMap::new();
    for i in all {
        by.entry(i.study.as_str()).or_default().push(i);
    }
    by.into_iter()
        .map(|(st, v)| {
            let mut m = pick(&v[0].attrs, STUDY_TAGS);
            let mut mods: Vec<String> = v.iter().filter_map(|i| first_str(&i.attrs, "00080060")).collect();
            mods.sort();
            mods.dedup();
            let series: std::collections::BTreeSet<&str> = v.iter().map(|i| i.series.as_str()).collect();
            m.insert("00080061".into(), json!({"vr": "CS", "Value": mods}));
            m.insert("00201206".into(), is(series.len()));
            m.insert("00201208".into(), is(v.len()));
            m.insert("00081190".into(), url(format!("{base}/studies/{st}")));
            Row::new(v[0], m)
        })
        .collect()
}

pub(crate) fn series_rows(all: &[Arc<Instance>], base: &str) -> Vec<Row> {
    let mut by: BTreeMap<(&str, &str), Vec<&Arc<Instance>>> = BTreeMap::new();
    for i in all {
        by.entry((i.study.as_str(), i.series.as_str())).or_default().push(i);
    }
    by.into_iter()
        .map(|((st, se), v)| {
            let mut m = pick(&v[0].attrs, SERIES_TAGS);
            m.insert("00201209".into(), is(v.len()));
            m.insert("00081190".into(), url(format!("{base}/studies/{st}/series/{se}")));
            Row::new(v[0], m)
        })
        .collect()
}

pub(crate) fn instance_rows(all: &[Arc<Instance>], base: &str) -> Vec<Row> {
    all.iter()
        .map(|i| {
            let mut m = pick(&i.attrs, INSTANCE_TAGS);
            m.insert(
                "00081190".into(),
                url(format!("{base}/studies/{}/series/{}/instances/{}", i.study, i.series, i.sop)),
            );
            Row::new(i, m)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn qido_filters_match_uid_lists_date_ranges_and_wildcards() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(matches(&v(&["1.2.3"]), "1.2.4,1.2.3", "UI", false));
        assert!(!matches(&v(&["1.2.3"]), "1.2.30", "UI", false));
        assert!(!matches(&v(&["1.2.3"]), "1.2.*", "UI", false), "no wildcards in UIDs");
        assert!(matches(&v(&["20040119"]), "20040101-20041231", "DA", false));
        assert!(matches(&v(&["20040119"]), "20040101-", "DA", false));
        assert!(!matches(&v(&["20040119"]), "-20031231", "DA", false));
        assert!(matches(&v(&["130000"]), "-1300", "TM", false), "a time range's upper end covers its minute");
        assert!(!matches(&v(&["130100"]), "-1300", "TM", false));
        assert!(matches(&v(&["CompressedSamples^CT1"]), "compressed*", "PN", false));
        assert!(matches(&v(&["CompressedSamples^CT1"]), "compressed", "PN", true), "fuzzy: a prefix of a name");
        assert!(!matches(&v(&["CompressedSamples^CT1"]), "compressed", "PN", false));
        assert!(matches(&v(&["1CT1"]), "?CT1", "LO", false));
        assert!(!matches(&v(&["1CT1"]), "?ct1", "LO", false), "case matters but for names");
        assert!(matches(&v(&["MR"]), "CT,MR", "CS", false), "a list of codes");
        assert!(!matches(&v(&[]), "CT", "CS", false), "an absent value matches no filter");
        assert!(matches(&v(&[]), "*", "CS", false));
        // Many stars cost |pattern| · |value| steps, not exponentially many.
        let stars = format!("{}x", "*".repeat(3000));
        assert!(!matches(&v(&["CompressedSamples^CT1"]), &stars, "PN", false));
        assert!(matches(&v(&["a*b"]), "*a**b*", "LO", false) && !matches(&v(&["ab"]), "a?b", "LO", false));
    }

    #[test]
    fn the_index_keeps_every_attribute_a_row_takes() {
        for t in STUDY_TAGS.iter().chain(SERIES_TAGS).chain(INSTANCE_TAGS) {
            assert!(ROW_TAGS.contains(t), "{t}");
        }
    }

    #[test]
    fn qido_matches_the_entity_copies_matched_attributes_and_ignores_unknown_keys() {
        let row = |id: &str, modality: &str| {
            let mut head = Map::new();
            head.insert("00100020".into(), json!({"vr": "LO", "Value": [id]}));
            head.insert("00080060".into(), json!({"vr": "CS", "Value": [modality]}));
            for uid in ["0020000D", "0020000E", "00080018"] {
                head.insert(uid.into(), json!({"vr": "UI", "Value": [format!("1.2.{id}")]}));
            }
            // An attribute no row carries: matched and copied from the header's text.
            head.insert("00181030".into(), json!({"vr": "LO", "Value": [format!("protocol {modality}")]}));
            let inst = Instance::new(id, std::path::Path::new(id), &head).unwrap();
            Row::new(&Arc::new(inst), Map::new())
        };
        let rows = || vec![row("a1", "CT"), row("a2", "MR"), row("b1", "CT")];
        let q = |pairs: &[(&str, &str)]| {
            axum::extract::Query(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<HashMap<_, _>>())
        };
        let ids = |r: ApiResult<(Vec<Value>, Vec<String>)>| {
            let (v, _) = r.unwrap();
            v.iter().map(|r| r["00100020"]["Value"][0].as_str().unwrap_or("-").to_string()).collect::<Vec<_>>()
        };
        assert_eq!(ids(filtered(rows(), &q(&[("PatientID", "a*")]))), ["a1", "a2"]);
        assert_eq!(ids(filtered(rows(), &q(&[("00100020", "b1")]))), ["b1"]);
        assert_eq!(
            ids(filtered(
                rows(),
                &q(&[("Modality", "CT"), ("limit", "1"), ("offset", "1"), ("includefield", "PatientID")])
            )),
            ["b1"]
        );
        let (v, ignored) = filtered(rows(), &q(&[("Frobnicate", "1"), ("includefield", "00080060")])).unwrap();
        assert_eq!((v.len(), ignored), (3, vec!["Frobnicate".to_string()]), "an unknown key is ignored and named");
        assert_eq!(v[1]["00080060"]["Value"][0], "MR", "includefield copies the attribute");
        // A row attribute the header lacks is absent without parsing the header; any other attribute parses it.
        let r = rows().remove(0);
        assert!(r.get("00080050").is_none() && r.full.get().is_none(), "AccessionNumber: absent, nothing parsed");
        assert!(r.get("00181030").is_some() && r.full.get().is_some());
        let (v, _) = filtered(rows(), &q(&[("ProtocolName", "protocol MR")])).unwrap();
        assert_eq!(v.len(), 1, "a filter on an attribute outside the rows' own");
        assert_eq!(
            (v[0]["00100020"]["Value"][0].as_str(), v[0]["00181030"]["Value"][0].as_str()),
            (None, Some("protocol MR"))
        );
        assert!(filtered(rows(), &q(&[("limit", "many")])).is_err());
        assert!(filtered(rows(), &q(&[("PatientID", &"x".repeat(5000))])).is_err());
    }
}
