import ArgumentParser

@main
struct ERPGateway: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "erp-gateway",
        abstract: "The API gateway in front of the multi-tenant ERP.",
        subcommands: [Serve.self, Check.self, Explain.self, Token.self, Usage.self]
    )
}
