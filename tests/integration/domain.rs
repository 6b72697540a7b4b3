//! `api.domain_name` in a Route 53 zone: poolside makes a DNS-validated
//! certificate for the name, serves HTTPS with it, and points the name at the
//! load balancer, marking the name as the environment's.

use crate::support::*;

async fn records(aws: &Aws, zone: &str) -> Vec<aws_sdk_route53::types::ResourceRecordSet> {
    aws.route53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .unwrap()
        .resource_record_sets()
        .to_vec()
}

#[tokio::test]
async fn a_domain_in_a_hosted_zone_gets_its_certificate_and_alias_record() {
    let aws = aws().await;
    let mut env = Env::new("dns");
    let domain = format!("api.{}.poolside.test", env.name);
    let zone = hosted_zone(&aws, &format!("{}.poolside.test", env.name)).await;
    env.api_extra = format!("domain_name = \"{domain}\"\nhosted_zone_id = \"{zone}\"\n");
    env.write();
    let run = env.deploy();
    assert!(
        !run.one("plan")["warnings"]
            .to_string()
            .contains("certificate_arn"),
        "a certificate poolside makes means no plain-HTTP warning"
    );

    // The certificate: issued, for the name, tagged as the environment's.
    let certificates = aws.acm.list_certificates().send().await.unwrap();
    let ours: Vec<_> = certificates
        .certificate_summary_list()
        .iter()
        .filter(|c| c.domain_name() == Some(domain.as_str()))
        .collect();
    assert_eq!(ours.len(), 1, "one certificate for the name");
    let arn = ours[0].certificate_arn().unwrap();
    let described = aws
        .acm
        .describe_certificate()
        .certificate_arn(arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        described.certificate().unwrap().status().unwrap().as_str(),
        "ISSUED"
    );

    // HTTPS with it, and HTTP redirected.
    let outputs = run.one("outputs");
    let lbs = aws
        .elb
        .describe_load_balancers()
        .names(format!("poolside-{}", env.name))
        .send()
        .await
        .unwrap();
    let lb = &lbs.load_balancers()[0];
    let listeners = aws
        .elb
        .describe_listeners()
        .load_balancer_arn(lb.load_balancer_arn().unwrap())
        .send()
        .await
        .unwrap();
    let https = listeners
        .listeners()
        .iter()
        .find(|l| l.port() == Some(443))
        .expect("an HTTPS listener");
    assert_eq!(https.certificates()[0].certificate_arn(), Some(arn));

    // The name is an alias of the load balancer, with the owner's TXT beside it.
    let sets = records(&aws, &zone).await;
    let named = |kind: &str| {
        sets.iter()
            .find(|r| r.name().trim_end_matches('.') == domain && r.r#type().as_str() == kind)
            .unwrap_or_else(|| panic!("no {kind} record for {domain}: {sets:?}"))
    };
    let alias = named("A").alias_target().expect("an alias");
    assert_eq!(
        alias.dns_name().trim_end_matches('.').to_ascii_lowercase(),
        lb.dns_name().unwrap().to_ascii_lowercase()
    );
    assert_eq!(
        alias.hosted_zone_id(),
        lb.canonical_hosted_zone_id().unwrap()
    );
    assert_eq!(
        named("TXT").resource_records()[0].value(),
        format!("\"poolside:env={}\"", env.name)
    );
    assert!(
        sets.iter().any(|r| r.r#type().as_str() == "CNAME"),
        "the certificate's validation record is in the zone"
    );
    assert!(outputs["api_url"].as_str().is_some());

    // Nothing left to do.
    env.plan().assert_code(0);

    // Measured before: a file that changed or dropped the domain left the
    // record and the certificate behind (discovery looked only where the file
    // said). Now the state bucket remembers the domains: a change moves both.
    let alias_of = |sets: &[aws_sdk_route53::types::ResourceRecordSet], name: &str| {
        sets.iter()
            .any(|r| r.name().trim_end_matches('.') == name && r.r#type().as_str() == "A")
    };
    let certificate_for = |name: String| {
        let aws = &aws;
        async move {
            aws.acm
                .list_certificates()
                .send()
                .await
                .unwrap()
                .certificate_summary_list()
                .iter()
                .any(|c| c.domain_name() == Some(name.as_str()))
        }
    };
    let old_domain = domain.clone();
    let domain = format!("api2.{}.poolside.test", env.name);
    env.api_extra = format!("domain_name = \"{domain}\"\nhosted_zone_id = \"{zone}\"\n");
    env.write();
    let plan = env.plan();
    plan.assert_code(2);
    let actions: Vec<(String, String)> = plan.one("plan")["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for expected in [
        ("dns-record/previous-1", "delete"),
        ("certificate/previous-1", "delete"),
        ("dns-record/api", "create"),
        ("certificate/api", "create"),
    ] {
        assert!(
            actions.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{expected:?} not in {actions:?}"
        );
    }
    env.deploy();
    let sets = records(&aws, &zone).await;
    assert!(
        !alias_of(&sets, &old_domain),
        "the old name still points here: {sets:?}"
    );
    assert!(alias_of(&sets, &domain), "the new name does not: {sets:?}");
    assert!(
        !certificate_for(old_domain.clone()).await,
        "the old certificate is still there"
    );
    assert!(certificate_for(domain.clone()).await);
    // The old certificate's validation CNAME went with it (ACM asks every
    // certificate of a name for the same record; none is left for it).
    let validations: Vec<String> = sets
        .iter()
        .filter(|r| r.r#type().as_str() == "CNAME")
        .map(|r| r.name().trim_end_matches('.').to_string())
        .collect();
    assert!(
        validations
            .iter()
            .all(|n| !n.ends_with(&format!(".{old_domain}"))),
        "the old name's validation record is left: {validations:?}"
    );
    assert!(
        validations
            .iter()
            .any(|n| n.ends_with(&format!(".{domain}"))),
        "the new name's validation record is missing: {validations:?}"
    );
    env.plan().assert_code(0);

    // Dropped: the next deploy deletes what was made for it.
    env.api_extra = String::new();
    env.write();
    let plan = env.plan();
    plan.assert_code(2);
    let deleted: Vec<String> = plan.one("plan")["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "delete")
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        deleted.contains(&"dns-record/previous-1".to_string())
            && deleted.contains(&"certificate/previous-1".to_string()),
        "{deleted:?}"
    );
    env.deploy();
    let sets = records(&aws, &zone).await;
    assert!(
        !sets
            .iter()
            .any(|r| r.name().trim_end_matches('.') == domain && r.r#type().as_str() == "A"),
        "the alias record is still there: {sets:?}"
    );
    let left = aws.acm.list_certificates().send().await.unwrap();
    assert!(
        !left
            .certificate_summary_list()
            .iter()
            .any(|c| c.domain_name() == Some(domain.as_str())),
        "the certificate is still there"
    );
    // Forgotten once gone: the plan after reads nothing there.
    env.plan().assert_code(0);
}

#[tokio::test]
async fn a_name_in_the_zone_that_another_made_is_not_taken_over() {
    let aws = aws().await;
    let mut env = Env::new("taken");
    let domain = format!("api.{}.poolside.test", env.name);
    let zone = hosted_zone(&aws, &format!("{}.poolside.test", env.name)).await;
    aws.route53
        .change_resource_record_sets()
        .hosted_zone_id(&zone)
        .change_batch(
            aws_sdk_route53::types::ChangeBatch::builder()
                .changes(
                    aws_sdk_route53::types::Change::builder()
                        .action(aws_sdk_route53::types::ChangeAction::Create)
                        .resource_record_set(
                            aws_sdk_route53::types::ResourceRecordSet::builder()
                                .name(&domain)
                                .r#type(aws_sdk_route53::types::RrType::A)
                                .ttl(300)
                                .resource_records(
                                    aws_sdk_route53::types::ResourceRecord::builder()
                                        .value("192.0.2.10")
                                        .build()
                                        .unwrap(),
                                )
                                .build()
                                .unwrap(),
                        )
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    env.api_extra = format!("domain_name = \"{domain}\"\nhosted_zone_id = \"{zone}\"\n");
    env.write();
    let plan = env.plan();
    plan.assert_code(1);
    assert!(
        plan.stderr()
            .contains("exists and was not made by this environment"),
        "{}",
        plan.stderr()
    );
    let a = records(&aws, &zone)
        .await
        .into_iter()
        .find(|r| r.r#type().as_str() == "A")
        .unwrap();
    assert_eq!(
        a.resource_records()[0].value(),
        "192.0.2.10",
        "left as it was"
    );
}
