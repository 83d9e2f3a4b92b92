# Evergreen issuer: compiled JavaScript on Node 20, run as the unprivileged `node` user.
# docker build -t evergreen . && docker run -p 8080:8080 -e DATABASE_URL=… -e ISSUER=… evergreen

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig*.json ./
COPY packages ./packages
RUN npm ci --ignore-scripts --no-audit --no-fund && npm run build \
 && npm prune --omit=dev --ignore-scripts \
 && rm -rf packages/*/src packages/*/test packages/*/dist/.tsbuildinfo

FROM node:20-bookworm-slim
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080 EVERGREEN_DATA_DIR=/data
WORKDIR /app
COPY --from=build --chown=root:root /app ./
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 8080
VOLUME ["/data"]
HEALTHCHECK CMD node -e "fetch('http://127.0.0.1:'+process.env.PORT+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "packages/cli/bin/evergreen.js", "serve"]
