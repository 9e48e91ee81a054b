//! QIDO-RS search for [`crate::dicomweb`]: result rows of studies, series and instances from the instances'
//! headers, and the filters (PS3.18 8.3.4: a UID list, a date range, `*`/`?` wildcards, `fuzzymatching` on
//! person names), `offset` and `limit`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::dicomweb::{first_str, Instance};
use crate::routes::Q;
use crate::{ApiError, ApiResult};

/// QIDO's attribute keywords this server matches on.
const KEYWORDS: &[(&str, &str)] = &[
    ("StudyInstanceUID", "0020000D"),
    ("SeriesInstanceUID", "0020000E"),
    ("SOPInstanceUID", "00080018"),
    ("SOPClassUID", "00080016"),
    ("PatientID", "00100020"),
    ("PatientName", "00100010"),
    ("PatientBirthDate", "00100030"),
    ("PatientSex", "00100040"),
    ("StudyDate", "00080020"),
    ("StudyTime", "00080030"),
    ("StudyID", "00200010"),
    ("AccessionNumber", "00080050"),
    ("StudyDescription", "00081030"),
    ("ReferringPhysicianName", "00080090"),
    ("ModalitiesInStudy", "00080061"),
    ("Modality", "00080060"),
    ("SeriesNumber", "00200011"),
    ("SeriesDescription", "0008103E"),
    ("InstanceNumber", "00200013"),
];

/// A `*`/`?` wildcard match, case-insensitive.
fn wildcard(pat: &[char], s: &[char]) -> bool {
    match (pat.first(), s.first()) {
        (None, _) => s.is_empty(),
        (Some('*'), _) => wildcard(&pat[1..], s) || (!s.is_empty() && wildcard(pat, &s[1..])),
        (Some('?'), Some(_)) => wildcard(&pat[1..], &s[1..]),
        (Some(p), Some(c)) => p.to_lowercase().eq(c.to_lowercase()) && wildcard(&pat[1..], &s[1..]),
        (Some(_), None) => false,
    }
}

/// Whether an attribute's values match a QIDO filter: a UID list, a date range `a-b`, or a wildcard pattern
/// (a trailing `*` implied with `fuzzymatching=true` on names).
fn matches(values: &[String], filter: &str, vr: &str, fuzzy: bool) -> bool {
    if filter.is_empty() || filter == "*" {
        return true;
    }
    match vr {
        "UI" => filter.split([',', '\\']).any(|u| values.iter().any(|v| v == u.trim())),
        "DA" | "TM" | "DT" if filter.contains('-') => {
            let (a, b) = filter.split_once('-').unwrap_or((filter, filter));
            values.iter().any(|v| (a.is_empty() || v.as_str() >= a) && (b.is_empty() || v.as_str() <= b))
        }
        _ => {
            let mut f = filter.to_string();
            if fuzzy && vr == "PN" && !f.ends_with('*') {
                f.push('*');
            }
            let pat: Vec<char> = f.chars().collect();
            values.iter().any(|v| wildcard(&pat, &v.chars().collect::<Vec<_>>()))
        }
    }
}

/// Every string form of an element's values (PN groups by their alphabetic form).
fn strings_of(m: &Map<String, Value>, tag: &str) -> (Vec<String>, String) {
    let Some(e) = m.get(tag) else { return (Vec::new(), String::new()) };
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

/// Filter, `offset` and `limit` of a QIDO query applied to result rows.
pub(crate) fn filtered(rows: Vec<Map<String, Value>>, q: &Q) -> ApiResult<Vec<Value>> {
    let fuzzy = q.get("fuzzymatching").is_some_and(|v| v == "true");
    let mut filters = Vec::new();
    for (k, v) in q.iter() {
        if matches!(k.as_str(), "limit" | "offset" | "includefield" | "fuzzymatching" | "_") {
            continue;
        }
        let tag =
            KEYWORDS.iter().find(|(n, t)| n == k || t.eq_ignore_ascii_case(k)).map(|(_, t)| *t).ok_or_else(|| {
                ApiError::bad(format!(
                    "QIDO filter {k:?}: this server matches on {}",
                    KEYWORDS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                ))
            })?;
        filters.push((tag, v.clone()));
    }
    let num = |name: &str, default: usize| -> ApiResult<usize> {
        q.get(name).map_or(Ok(default), |v| v.parse().map_err(|_| ApiError::bad(format!("{name} {v:?}: a number"))))
    };
    let (offset, limit) = (num("offset", 0)?, num("limit", usize::MAX)?);
    Ok(rows
        .into_iter()
        .filter(|r| {
            filters.iter().all(|(tag, f)| {
                let (vals, vr) = strings_of(r, tag);
                let vr = if vr.is_empty() { KEYWORD_VR.get(tag).copied().unwrap_or("LO").to_string() } else { vr };
                matches(&vals, f, &vr, fuzzy)
            })
        })
        .skip(offset)
        .take(limit)
        .map(Value::Object)
        .collect())
}

/// VRs of the filter attributes a row may lack (an empty match still needs the right rule).
static KEYWORD_VR: std::sync::LazyLock<HashMap<&'static str, &'static str>> = std::sync::LazyLock::new(|| {
    HashMap::from([("0020000D", "UI"), ("0020000E", "UI"), ("00080018", "UI"), ("00080016", "UI"), ("00080020", "DA")])
});

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

pub(crate) fn study_rows(all: &[Arc<Instance>], base: &str) -> Vec<Map<String, Value>> {
    let mut by: BTreeMap<&str, Vec<&Arc<Instance>>> = BTreeMap::new();
    for i in all {
        by.entry(i.study.as_str()).or_default().push(i);
    }
    by.into_iter()
        .map(|(st, v)| {
            let mut m = pick(&v[0].json, STUDY_TAGS);
            let mut mods: Vec<String> = v.iter().filter_map(|i| first_str(&i.json, "00080060")).collect();
            mods.sort();
            mods.dedup();
            let series: std::collections::BTreeSet<&str> = v.iter().map(|i| i.series.as_str()).collect();
            m.insert("00080061".into(), json!({"vr": "CS", "Value": mods}));
            m.insert("00201206".into(), is(series.len()));
            m.insert("00201208".into(), is(v.len()));
            m.insert("00081190".into(), url(format!("{base}/studies/{st}")));
            m
        })
        .collect()
}

pub(crate) fn series_rows(all: &[Arc<Instance>], base: &str) -> Vec<Map<String, Value>> {
    let mut by: BTreeMap<(&str, &str), Vec<&Arc<Instance>>> = BTreeMap::new();
    for i in all {
        by.entry((i.study.as_str(), i.series.as_str())).or_default().push(i);
    }
    by.into_iter()
        .map(|((st, se), v)| {
            let mut m = pick(&v[0].json, SERIES_TAGS);
            m.insert("00201209".into(), is(v.len()));
            m.insert("00081190".into(), url(format!("{base}/studies/{st}/series/{se}")));
            m
        })
        .collect()
}

pub(crate) fn instance_rows(all: &[Arc<Instance>], base: &str) -> Vec<Map<String, Value>> {
    all.iter()
        .map(|i| {
            let mut m = pick(&i.json, INSTANCE_TAGS);
            m.insert(
                "00081190".into(),
                url(format!("{base}/studies/{}/series/{}/instances/{}", i.study, i.series, i.sop)),
            );
            m
        })
        .collect()
}

#[cfg(test)]
mod tests {
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
        assert!(matches(&v(&["CompressedSamples^CT1"]), "compressed*", "PN", false));
        assert!(matches(&v(&["CompressedSamples^CT1"]), "compressed", "PN", true), "fuzzy: a prefix of a name");
        assert!(!matches(&v(&["CompressedSamples^CT1"]), "compressed", "PN", false));
        assert!(matches(&v(&["1CT1"]), "?CT1", "LO", false));
        assert!(!matches(&v(&[]), "CT", "CS", false), "an absent value matches no filter");
        assert!(matches(&v(&[]), "*", "CS", false));
    }

    #[test]
    fn qido_offset_limit_and_unknown_filters() {
        let row = |id: &str| {
            let mut m = Map::new();
            m.insert("00100020".into(), json!({"vr": "LO", "Value": [id]}));
            m
        };
        let rows = vec![row("a1"), row("a2"), row("b1")];
        let q = |pairs: &[(&str, &str)]| {
            axum::extract::Query(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<HashMap<_, _>>())
        };
        let ids = |v: Vec<Value>| {
            v.iter().map(|r| r["00100020"]["Value"][0].as_str().unwrap().to_string()).collect::<Vec<_>>()
        };
        assert_eq!(ids(filtered(rows.clone(), &q(&[("PatientID", "a*")])).unwrap()), ["a1", "a2"]);
        assert_eq!(ids(filtered(rows.clone(), &q(&[("00100020", "b1")])).unwrap()), ["b1"]);
        assert_eq!(ids(filtered(rows.clone(), &q(&[("offset", "1"), ("limit", "1")])).unwrap()), ["a2"]);
        let e = filtered(rows.clone(), &q(&[("Frobnicate", "1")])).unwrap_err();
        assert!(e.status == axum::http::StatusCode::BAD_REQUEST && e.message.contains("Frobnicate"), "{}", e.message);
        assert!(filtered(rows, &q(&[("limit", "many")])).is_err());
    }
}
