//! The API's domain name in the customer's Route 53 zone: an alias record to
//! the load balancer (with a TXT record beside it naming the environment that
//! owns the name, since Route 53 records take no tags), and an ACM
//! certificate for the name, validated through a CNAME in the same zone.

pub mod spec;

use super::aws_error::AwsResultExt;
use super::context::Context;
use super::tags::identify;
use super::waits::Waits;
use crate::model::*;
use crate::resources::resource::Resource;
use crate::resources::spec::*;
use anyhow::{anyhow, bail};
use aws_sdk_acm::types::{CertificateStatus, Tag as AcmTag, ValidationMethod};
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::Duration;

/// AWS: DNS validation usually completes in minutes once the record exists.
const ISSUED_WITHIN: Duration = Duration::from_secs(45 * 60);
/// How long ACM may take to say which validation record it wants.
const RECORD_NAMED_WITHIN: Duration = Duration::from_secs(5 * 60);
/// Route 53 changes reach its name servers within about a minute.
const IN_SYNC_WITHIN: Duration = Duration::from_secs(10 * 60);
const POLL_EVERY: Duration = Duration::from_secs(5);

/// What discovery needs: the name, and the zone it lives in.
pub struct DomainNames {
    pub domain_name: String,
    pub zone_id: String,
}

pub async fn discover(cx: &Context, names: &DomainNames) -> anyhow::Result<Vec<Live>> {
    let (certificates, record) =
        tokio::try_join!(discover_certificates(cx, names), discover_record(cx, names),)?;
    Ok(certificates.into_iter().chain(record).collect())
}

// ---- certificate ----

async fn discover_certificates(cx: &Context, names: &DomainNames) -> anyhow::Result<Vec<Live>> {
    let domain = names.domain_name.as_str();
    let mut arns = Vec::new();
    let mut pages = cx.clients.acm.list_certificates().into_paginator().send();
    while let Some(page) = pages.next().await {
        for summary in page.aws("ListCertificates")?.certificate_summary_list() {
            if summary.domain_name() == Some(domain) {
                arns.extend(summary.certificate_arn().map(str::to_string));
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut live = Vec::new();
    for arn in arns {
        let tags = certificate_tags(cx, &arn).await?;
        let Some(id) = identify(&cx.environment, &tags, &arn, &mut seen) else {
            continue;
        };
        live.push(Live {
            id,
            physical_id: arn.clone(),
            spec: Spec::Certificate(CertificateSpec {
                domain_name: domain.to_string(),
                zone_id: names.zone_id.clone(),
                tags,
            }),
            attributes: BTreeMap::from([("arn".to_string(), arn)]),
        });
    }
    Ok(live)
}

async fn certificate_tags(cx: &Context, arn: &str) -> anyhow::Result<Tags> {
    let out = cx
        .clients
        .acm
        .list_tags_for_certificate()
        .certificate_arn(arn)
        .send()
        .await
        .aws("ListTagsForCertificate")?;
    Ok(super::tags::user_visible_tags(out.tags().iter().map(|t| {
        (
            t.key().to_string(),
            t.value().unwrap_or_default().to_string(),
        )
    })))
}

fn acm_tags(tags: &Tags) -> anyhow::Result<Vec<AcmTag>> {
    Ok(tags
        .iter()
        .map(|(k, v)| AcmTag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()?)
}

/// Requests the certificate, writes its validation record into the zone and
/// waits until ACM issues it: the HTTPS listener that names it comes next.
pub async fn create_certificate(
    cx: &Context,
    id: &ResourceId,
    spec: &CertificateSpec,
    waits: &Waits<'_>,
) -> anyhow::Result<String> {
    // The same token within an hour gives back the same certificate, so a
    // run that stopped after this call does not make a second one.
    let seed = format!("{}/{}", cx.environment, spec.domain_name);
    let token: String = format!("{:x}", Sha256::digest(seed.as_bytes()))
        .chars()
        .take(32)
        .collect();
    let mut arn = request_certificate(cx, spec, &token).await?;
    // The token names the certificate asked for within the hour, even one a
    // destroy deleted since: then ask once more with a token of its own.
    if describe_certificate(cx, &arn)
        .await
        .is_err_and(|e| format!("{e:#}").contains("ResourceNotFound"))
    {
        let fresh = format!("{token:.24}{:08x}", rand::random::<u32>());
        arn = request_certificate(cx, spec, &fresh).await?;
    }
    cx.record(id, &arn);
    let record = waits
        .report(
            id,
            "ACM to name its validation record",
            RECORD_NAMED_WITHIN,
            validation_record(cx, &arn),
        )
        .await??;
    upsert(cx, &spec.zone_id, vec![record]).await?;
    waits
        .report(id, "issued", ISSUED_WITHIN, issued(cx, &arn))
        .await??;
    cx.record_attribute(id, "arn", &arn);
    Ok(arn)
}

async fn request_certificate(
    cx: &Context,
    spec: &CertificateSpec,
    token: &str,
) -> anyhow::Result<String> {
    let out = cx
        .clients
        .acm
        .request_certificate()
        .domain_name(&spec.domain_name)
        .validation_method(ValidationMethod::Dns)
        .idempotency_token(token)
        .set_tags(Some(acm_tags(&spec.tags)?))
        .send()
        .await
        .aws("RequestCertificate")?;
    Ok(out
        .certificate_arn()
        .ok_or_else(|| anyhow!("RequestCertificate returned no ARN"))?
        .to_string())
}

async fn describe_certificate(
    cx: &Context,
    arn: &str,
) -> anyhow::Result<Option<aws_sdk_acm::types::CertificateDetail>> {
    let out = cx
        .clients
        .acm
        .describe_certificate()
        .certificate_arn(arn)
        .send()
        .await
        .aws("DescribeCertificate")?;
    Ok(out.certificate().cloned())
}

/// The CNAME ACM asks for, once DescribeCertificate names it.
async fn validation_record(cx: &Context, arn: &str) -> anyhow::Result<ResourceRecordSet> {
    let started = tokio::time::Instant::now();
    loop {
        let certificate = describe_certificate(cx, arn).await?;
        let record = certificate
            .as_ref()
            .and_then(|c| c.domain_validation_options().first())
            .and_then(|o| o.resource_record());
        if let Some(record) = record {
            return Ok(ResourceRecordSet::builder()
                .name(record.name())
                .r#type(RrType::Cname)
                .ttl(300)
                .resource_records(ResourceRecord::builder().value(record.value()).build()?)
                .build()?);
        }
        if started.elapsed() >= RECORD_NAMED_WITHIN {
            bail!(
                "ACM has not named the validation record of {arn} after {}s",
                RECORD_NAMED_WITHIN.as_secs()
            );
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

async fn issued(cx: &Context, arn: &str) -> anyhow::Result<()> {
    let started = tokio::time::Instant::now();
    loop {
        let certificate = describe_certificate(cx, arn).await?;
        match certificate.as_ref().and_then(|c| c.status()) {
            Some(CertificateStatus::Issued) => return Ok(()),
            Some(CertificateStatus::PendingValidation) | None => {}
            Some(other) => bail!(
                "ACM certificate {arn} is {}: it will not be issued (is the zone authoritative for the name?)",
                other.as_str()
            ),
        }
        if started.elapsed() >= ISSUED_WITHIN {
            bail!("ACM certificate {arn} is still not issued after {} minutes: check that the hosted zone is the one the domain's name servers serve", ISSUED_WITHIN.as_secs() / 60);
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

pub async fn update_certificate(
    cx: &Context,
    arn: &str,
    old: &CertificateSpec,
    new: &CertificateSpec,
) -> anyhow::Result<()> {
    let (changed, removed) = super::tags::tag_changes(&old.tags, &new.tags);
    if !changed.is_empty() {
        cx.clients
            .acm
            .add_tags_to_certificate()
            .certificate_arn(arn)
            .set_tags(Some(acm_tags(&changed)?))
            .send()
            .await
            .aws("AddTagsToCertificate")?;
    }
    if !removed.is_empty() {
        let keys = removed
            .iter()
            .map(|k| AcmTag::builder().key(k).build())
            .collect::<Result<Vec<_>, _>>()?;
        cx.clients
            .acm
            .remove_tags_from_certificate()
            .certificate_arn(arn)
            .set_tags(Some(keys))
            .send()
            .await
            .aws("RemoveTagsFromCertificate")?;
    }
    Ok(())
}

/// Deletes the certificate (its listener went first), then its validation
/// CNAME, unless another certificate for the same name is left: ACM asks
/// every certificate of a name for the same record, and renews with it.
pub async fn delete_certificate(
    cx: &Context,
    arn: &str,
    spec: &CertificateSpec,
) -> anyhow::Result<()> {
    let validation = match describe_certificate(cx, arn).await {
        Ok(certificate) => certificate
            .as_ref()
            .and_then(|c| c.domain_validation_options().first())
            .and_then(|o| o.resource_record())
            .map(|r| (r.name().to_string(), r.value().to_string())),
        Err(err) if format!("{err:#}").contains("ResourceNotFound") => None,
        Err(err) => return Err(err),
    };
    super::aws_error::ignore_not_found(
        cx.clients
            .acm
            .delete_certificate()
            .certificate_arn(arn)
            .send()
            .await,
        "DeleteCertificate",
    )?;
    let Some((name, value)) = validation.filter(|_| !spec.zone_id.is_empty()) else {
        return Ok(());
    };
    if still_certified(cx, &spec.domain_name, arn).await? {
        return Ok(());
    }
    let record = ResourceRecordSet::builder()
        .name(&name)
        .r#type(RrType::Cname)
        .ttl(300)
        .resource_records(ResourceRecord::builder().value(&value).build()?)
        .build()?;
    match change(cx, &spec.zone_id, ChangeAction::Delete, vec![record]).await {
        Ok(_) => Ok(()),
        // Gone already, or changed by hand (a DELETE must match exactly):
        // either way not poolside's record to remove any more.
        Err(err) if format!("{err:#}").contains("InvalidChangeBatch") => {
            tracing::warn!(record = %name, error = %format!("{err:#}"), "left the validation record as it is");
            Ok(())
        }
        Err(err) => Err(err),
    }
}

/// Whether a certificate of this region other than `deleted` still covers
/// `domain` (as its name, an alternative name or by a wildcard), of any key
/// type: ListCertificates lists RSA 2048 and 1024 keys only unless asked.
async fn still_certified(cx: &Context, domain: &str, deleted: &str) -> anyhow::Result<bool> {
    use aws_sdk_acm::types::{Filters, KeyAlgorithm};
    let wildcard = domain
        .split_once('.')
        .map(|(_, parent)| format!("*.{parent}"));
    let covers = |name: &str| name == domain || Some(name) == wildcard.as_deref();
    let every_key_type = Filters::builder()
        .set_key_types(Some(
            KeyAlgorithm::values()
                .iter()
                .map(|k| KeyAlgorithm::from(*k))
                .collect(),
        ))
        .build();
    let mut pages = cx
        .clients
        .acm
        .list_certificates()
        .includes(every_key_type)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.aws("ListCertificates")?;
        if page.certificate_summary_list().iter().any(|c| {
            c.certificate_arn() != Some(deleted)
                && (c.domain_name().is_some_and(covers)
                    || c.subject_alternative_name_summaries()
                        .iter()
                        .any(|n| covers(n)))
        }) {
            return Ok(true);
        }
    }
    Ok(false)
}

// ---- alias record ----

/// Route 53 writes names with a trailing dot, and in lower case.
fn canonical(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

async fn discover_record(cx: &Context, names: &DomainNames) -> anyhow::Result<Option<Live>> {
    let out = cx
        .clients
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(&names.zone_id)
        .start_record_name(&names.domain_name)
        .max_items(10)
        .send()
        .await
        .aws("ListResourceRecordSets")?;
    let here: Vec<&ResourceRecordSet> = out
        .resource_record_sets()
        .iter()
        .filter(|r| canonical(r.name()) == canonical(&names.domain_name))
        .collect();
    let alias = here.iter().find(|r| r.r#type() == &RrType::A);
    let owner = here
        .iter()
        .find(|r| r.r#type() == &RrType::Txt)
        .and_then(|r| r.resource_records().first())
        .map(|r| r.value().trim_matches('"').to_string());
    let Some(alias) = alias else {
        return Ok(None);
    };
    let ours = format!("poolside:env={}", cx.environment);
    if owner.as_deref() != Some(ours.as_str()) {
        bail!(
            "the record {} A in hosted zone {} exists and was not made by this environment ({}); remove it, or choose another api.domain_name",
            names.domain_name,
            names.zone_id,
            owner.map_or("no poolside TXT record beside it".to_string(), |o| format!("its TXT record says {o:?}"))
        );
    }
    let target = alias.alias_target();
    Ok(Some(Live {
        id: ResourceId::new(Kind::DnsRecord, "api"),
        physical_id: format!("{}/{}", names.zone_id, canonical(&names.domain_name)),
        spec: Spec::DnsRecord(DnsRecordSpec {
            zone_id: names.zone_id.clone(),
            name: names.domain_name.clone(),
            alias_target: target.map(|t| canonical(t.dns_name())).unwrap_or_default(),
            alias_zone: target
                .map(|t| t.hosted_zone_id().to_string())
                .unwrap_or_default(),
            owner: ours,
        }),
        attributes: BTreeMap::new(),
    }))
}

fn record_sets(spec: &DnsRecordSpec) -> anyhow::Result<Vec<ResourceRecordSet>> {
    Ok(vec![
        ResourceRecordSet::builder()
            .name(&spec.name)
            .r#type(RrType::A)
            .alias_target(
                AliasTarget::builder()
                    .dns_name(&spec.alias_target)
                    .hosted_zone_id(&spec.alias_zone)
                    .evaluate_target_health(false)
                    .build()?,
            )
            .build()?,
        ResourceRecordSet::builder()
            .name(&spec.name)
            .r#type(RrType::Txt)
            .ttl(300)
            .resource_records(
                ResourceRecord::builder()
                    .value(format!("\"{}\"", spec.owner))
                    .build()?,
            )
            .build()?,
    ])
}

/// Create and update are one UPSERT of both records, then a wait until
/// Route 53 reports the change in sync.
pub async fn put_record(
    cx: &Context,
    spec: &DnsRecordSpec,
    waits: &Waits<'_>,
) -> anyhow::Result<String> {
    let change = upsert(cx, &spec.zone_id, record_sets(spec)?).await?;
    let id = ResourceId::new(Kind::DnsRecord, "api");
    waits
        .report(&id, "in sync", IN_SYNC_WITHIN, in_sync(cx, &change))
        .await??;
    Ok(format!("{}/{}", spec.zone_id, canonical(&spec.name)))
}

async fn upsert(
    cx: &Context,
    zone: &str,
    records: Vec<ResourceRecordSet>,
) -> anyhow::Result<String> {
    change(cx, zone, ChangeAction::Upsert, records).await
}

async fn change(
    cx: &Context,
    zone: &str,
    action: ChangeAction,
    records: Vec<ResourceRecordSet>,
) -> anyhow::Result<String> {
    let changes = records
        .into_iter()
        .map(|record| {
            Change::builder()
                .action(action.clone())
                .resource_record_set(record)
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let out = cx
        .clients
        .route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(ChangeBatch::builder().set_changes(Some(changes)).build()?)
        .send()
        .await
        .aws("ChangeResourceRecordSets")?;
    Ok(out
        .change_info()
        .map(|c| c.id().to_string())
        .unwrap_or_default())
}

async fn in_sync(cx: &Context, change: &str) -> anyhow::Result<()> {
    if change.is_empty() {
        return Ok(());
    }
    let started = tokio::time::Instant::now();
    loop {
        let out = cx
            .clients
            .route53
            .get_change()
            .id(change)
            .send()
            .await
            .aws("GetChange")?;
        if out.change_info().map(|c| c.status().as_str()) == Some("INSYNC") {
            return Ok(());
        }
        if started.elapsed() >= IN_SYNC_WITHIN {
            bail!(
                "Route 53 change {change} is not in sync after {} minutes",
                IN_SYNC_WITHIN.as_secs() / 60
            );
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Deletes both records; a DELETE must name exactly what exists, which the
/// live spec does.
pub async fn delete_record(cx: &Context, spec: &DnsRecordSpec) -> anyhow::Result<()> {
    match change(cx, &spec.zone_id, ChangeAction::Delete, record_sets(spec)?).await {
        Ok(_) => Ok(()),
        // Already gone (InvalidChangeBatch: "not found"): the delete has done its job.
        Err(err) if format!("{err:#}").contains("not found") => Ok(()),
        Err(err) => Err(err),
    }
}

impl Resource for CertificateSpec {
    async fn create(
        &self,
        cx: &Context,
        id: &ResourceId,
        waits: &Waits<'_>,
    ) -> anyhow::Result<String> {
        create_certificate(cx, id, self, waits).await
    }

    async fn update(
        &self,
        cx: &Context,
        live: &Live,
        old: &Self,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<()> {
        update_certificate(cx, &live.physical_id, old, self).await
    }

    async fn delete(&self, cx: &Context, live: &Live, _waits: &Waits<'_>) -> anyhow::Result<()> {
        delete_certificate(cx, &live.physical_id, self).await
    }
}

impl Resource for DnsRecordSpec {
    async fn create(
        &self,
        cx: &Context,
        _id: &ResourceId,
        waits: &Waits<'_>,
    ) -> anyhow::Result<String> {
        put_record(cx, self, waits).await
    }

    async fn update(
        &self,
        cx: &Context,
        _live: &Live,
        _old: &Self,
        waits: &Waits<'_>,
    ) -> anyhow::Result<()> {
        put_record(cx, self, waits).await.map(drop)
    }

    async fn delete(&self, cx: &Context, _live: &Live, _waits: &Waits<'_>) -> anyhow::Result<()> {
        delete_record(cx, self).await
    }
}
