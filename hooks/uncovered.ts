/**
 * Packages that run code or fetch resources found in the data they are given, and that no hook covers yet.
 * `stepguard doctor` names the ones an app has installed, so an app using them is told it runs unprotected
 * there. A package moves out of this list when a hook line for it lands in hooks/index.ts.
 */
export const UNCOVERED_RISKY_PACKAGES: Readonly<Record<string, string>> = {
  'serialize-to-js': 'deserializer that evaluates JavaScript',
  funcster: 'deserializer that rebuilds functions from strings',
  cryo: 'deserializer that rebuilds functions from strings',
  'expr-eval': 'expression evaluator',
  'safe-eval': 'evaluates JavaScript in a vm context',
  'static-eval': 'expression evaluator',
  vm2: 'sandbox with known escapes',
  xmldom: 'XML parser (DTDs, no entity-expansion limits)',
  '@xmldom/xmldom': 'XML parser (DTDs, no entity-expansion limits)',
  libxslt: 'XSLT processor (document() and external entities)',
  'xml-crypto': 'XML signature processing',
};
