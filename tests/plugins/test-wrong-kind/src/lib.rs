//! `test-wrong-kind`: declares itself a frontend but provides an authenticator, so the loader
//! must refuse it.

use fstream_abi::{
    kinds,
    sdk::{authenticator_box, Authenticate},
    AuthRequest, AuthVerdict, HostApiBox, InitContext, PluginError, PluginInstance, PluginObject,
};

fstream_abi::export_plugin! { name: "test-wrong-kind", kinds: kinds::FRONTEND, init: init }

fn init(_: &HostApiBox, _: &InitContext) -> Result<PluginInstance, PluginError> {
    Ok(PluginInstance::empty().with(PluginObject::Authenticator(authenticator_box(Nobody))))
}

struct Nobody;

impl Authenticate for Nobody {
    fn authenticate(&self, _: &AuthRequest) -> Result<AuthVerdict, PluginError> {
        Ok(AuthVerdict::Abstain)
    }
}
