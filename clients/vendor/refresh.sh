#!/usr/bin/env bash
# Refreshes the pinned browser assets the server embeds (GraphiQL, React) from the npm
# registry: the versions are those of package-lock.json here. The copies and their
# licences go to assets/, which is committed; CI runs this and fails if anything changed.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --silent
rm -rf assets && mkdir -p assets
cp node_modules/react/umd/react.production.min.js assets/
cp node_modules/react-dom/umd/react-dom.production.min.js assets/
cp node_modules/graphiql/graphiql.min.js node_modules/graphiql/graphiql.min.css assets/
cp node_modules/react/LICENSE assets/LICENSE.react
cp node_modules/react-dom/LICENSE assets/LICENSE.react-dom
cp node_modules/graphiql/LICENSE assets/LICENSE.graphiql
