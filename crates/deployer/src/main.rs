//! `deployer`: builds the prediction function's image and deploys it to
//! AWS Lambda behind API Gateway, with no CloudFormation.

mod aws;
mod commands;
mod config;
mod image;
mod local;
mod plan;

fn main() {
    println!("deployer");
}
