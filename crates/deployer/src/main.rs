//! `deployer`: builds the prediction function's image and deploys it to
//! AWS Lambda behind API Gateway, with no CloudFormation.

fn main() {
    println!("deployer");
}
