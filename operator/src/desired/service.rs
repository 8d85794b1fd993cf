//! The fleet's Service: the workers' health/metrics port (served as 8001, named `health`,
//! targeting the port the worker listens on), for scraping
//! and per-pod discovery. It is headless (`clusterIP: None`): nothing load-balances to a
//! health port, and a cluster with many fleets must not run out of service IPs.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::deployment::health_port;
use super::{HEALTH_PORT, HEALTH_PORT_NAME, child_meta, name_and_namespace, selector_labels, with_hash};
use crate::crd::HatchetWorker;
use crate::error::Error;

/// The Service selecting the fleet's pods on the `health` port, stamped with its hash.
pub fn desired_service(hw: &HatchetWorker) -> Result<Service, Error> {
    let (name, _) = name_and_namespace(hw)?;
    with_hash(Service {
        metadata: child_meta(hw)?,
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(selector_labels(&name)),
            ports: Some(vec![ServicePort {
                name: Some(HEALTH_PORT_NAME.into()),
                port: HEALTH_PORT,
                target_port: Some(IntOrString::Int(health_port(hw))),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::fixtures::mk_hw;

    #[test]
    fn service_exposes_the_health_port_of_the_fleet() {
        let s = desired_service(&mk_hw(serde_json::json!({}))).unwrap();
        let spec = s.spec.unwrap();
        let port = &spec.ports.unwrap()[0];
        assert_eq!((port.name.as_deref(), port.port), (Some("health"), 8001));
        assert_eq!(port.target_port, Some(IntOrString::Int(8001)));
        assert_eq!(spec.selector.unwrap(), selector_labels("fleet"));
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"), "headless");
    }
}
