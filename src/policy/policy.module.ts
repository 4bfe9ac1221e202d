import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { AuthMiddleware } from './auth.middleware.js';
import { PolicyGuard } from './policy.guard.js';
import { PolicyService } from './policy.service.js';
import { PropertyProtectionService } from './property-protection.service.js';

@Module({
  providers: [PolicyService, PropertyProtectionService, AuthMiddleware, { provide: APP_GUARD, useClass: PolicyGuard }],
  exports: [PolicyService, PropertyProtectionService, AuthMiddleware],
})
export class PolicyModule {}
